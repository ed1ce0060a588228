"""Referral codes: each customer's own code (given at enrolment), and who brought whom.

A code is 8 random Crockford base32 characters, typed case-insensitively with O/I/L read as
0/1/1. A new customer may name one code at enrolment; the referral is rewarded once, at their
first qualifying sale (sales/referrals.py).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel, col, func, select

from pos_loyalty.customers.models import Customer
from pos_loyalty.errors import InvalidInput, NotFound
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import UTCDateTime, utcnow

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8


class ReferralCode(SQLModel, table=True):
    __tablename__ = "referral_codes"

    code: str = Field(primary_key=True, max_length=16)
    customer_id: str = Field(max_length=32, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Referral(SQLModel, table=True):
    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_referrer_id", "referrer_id"),)

    new_customer_id: str = Field(primary_key=True, max_length=32)  # one referral per newcomer
    referrer_id: str = Field(max_length=32)
    code: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    rewarded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    transaction_id: str | None = Field(default=None, max_length=32)
    rule_id: str | None = Field(default=None, max_length=64)


class ReferralCodeUnknown(InvalidInput):
    code = "referral_code_unknown"


def normalise_referral_code(text: str) -> str:
    folded = "".join(ch for ch in text.upper() if ch not in " -")
    return folded.translate(str.maketrans("OIL", "011"))


def referral_code_for(*, uow: UnitOfWork, customer_id: str) -> str:
    """The customer's code, made on first request (enrolment); call in a write unit of work."""
    found = uow.session.exec(
        select(ReferralCode.code).where(col(ReferralCode.customer_id) == customer_id)
    ).first()
    if found is not None:
        return found
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    uow.session.add(ReferralCode(code=code, customer_id=customer_id))
    uow.session.flush()  # a clash (1 in 10^12) fails the key and the request, never silently
    return code


def referrer_of(*, uow: UnitOfWork, code: str) -> str:
    """The open account a typed code belongs to, or 422 `referral_code_unknown`."""
    owner = uow.session.exec(
        select(ReferralCode.customer_id)
        .join(Customer, col(Customer.id) == col(ReferralCode.customer_id))
        .where(
            col(ReferralCode.code) == normalise_referral_code(code),
            col(Customer.closed_at).is_(None),
        )
    ).first()
    if owner is None:
        raise ReferralCodeUnknown(
            f"referral code {code!r} belongs to nobody", details={"field": "referred_by"}
        )
    return owner


def record_referral(*, uow: UnitOfWork, code: str, new_customer_id: str) -> str:
    """Note that `code`'s owner brought `new_customer_id` (never themselves); the referrer."""
    referrer = referrer_of(uow=uow, code=code)
    if referrer == new_customer_id:
        raise InvalidInput(
            "a customer cannot refer themselves",
            code="self_referral",
            details={"field": "referred_by"},
        )
    uow.session.add(
        Referral(
            new_customer_id=new_customer_id,
            referrer_id=referrer,
            code=normalise_referral_code(code),
        )
    )
    uow.session.flush()
    return referrer


def referral_stats(*, uow: UnitOfWork, customer_id: str) -> tuple[str, int, int]:
    """(the customer's code, friends referred, friends rewarded so far)."""
    if uow.session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    code = referral_code_for(uow=uow, customer_id=customer_id)
    invited, rewarded = uow.session.exec(
        select(func.count(), func.count(col(Referral.rewarded_at))).where(
            col(Referral.referrer_id) == customer_id
        )
    ).one()
    return code, int(invited), int(rewarded)
