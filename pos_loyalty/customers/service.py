"""Enrolment, profiles and identification of customers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import uuid4

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from pos_loyalty.customers.emails import mask_email, normalise_email
from pos_loyalty.customers.lookup import identify
from pos_loyalty.customers.models import Card, Customer, short_name
from pos_loyalty.customers.referrals import record_referral, referral_code_for
from pos_loyalty.errors import Conflict, InvalidInput, NotFound
from pos_loyalty.identity.tokens import (
    issue_card_number,
    mask_phone,
    mint_qr,
    normalise_phone,
    parse_card,
    phone_lookup_hash,
)
from pos_loyalty.ledger.expiring import expiring_now
from pos_loyalty.plain_text import CONTROL_CHARACTERS_MESSAGE, has_control_characters
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.engine import tier_status
from pos_loyalty.security import StoreSecret
from pos_loyalty.settings import Settings
from pos_loyalty.storage import UnitOfWork


class IdMethod(StrEnum):
    PHONE = "phone"
    CARD = "card"
    QR = "qr"


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """What the store may show about a customer (the phone is masked unless kept in clear; the
    e-mail is here in full for the operator's tools, and shown as `email_masked`)."""

    id: str
    name: str
    phone: str
    phone_masked: str
    card_numbers: list[str]
    birthday: date | None
    consents: dict[str, Any]
    lifetime_spend: int
    points_balance: int
    created_at: datetime
    email: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def email_masked(self) -> str | None:
        """ "i***@example.ru" for a page or a till's answer; None without an e-mail."""
        return mask_email(self.email) if self.email else None

    @property
    def short_name(self) -> str:
        """ "Иван П." for a receipt: first name and the initial of the last."""
        return short_name(self.name)


def _profile(customer: Customer, cards: list[str]) -> CustomerProfile:
    return CustomerProfile(
        id=customer.id,
        name=customer.name,
        phone=customer.phone_e164 or customer.phone_masked,
        phone_masked=customer.phone_masked,
        card_numbers=cards,
        birthday=customer.birthday,
        consents=dict(customer.consents),
        lifetime_spend=customer.lifetime_spend,
        points_balance=customer.points_balance,
        created_at=customer.created_at,
        email=customer.email,
    )


def _load_profile(uow: UnitOfWork, condition: ColumnElement[bool]) -> CustomerProfile | None:
    """The customer matching `condition` with all their cards, in one query."""
    rows = uow.session.exec(
        select(Customer, Card.number)
        .outerjoin(Card, col(Card.customer_id) == col(Customer.id))
        .where(condition, col(Customer.closed_at).is_(None))  # erased or merged: nobody
        .order_by(col(Card.created_at), col(Card.number))
    ).all()
    if not rows:
        return None
    return _profile(rows[0][0], [number for _, number in rows if number is not None])


# Oldest birthday taken at enrolment; anything earlier is a typo (a birth year of 0985).
EARLIEST_BIRTHDAY = date(1900, 1, 1)


def _check_name(raw: str) -> str:
    """A name is printed on receipts: control characters (NUL, ESC …) would reach the printer."""
    name = raw.strip()
    if not name:
        raise InvalidInput("name must not be empty", code="name_invalid", details={"field": "name"})
    if has_control_characters(name):
        raise InvalidInput(
            f"name {CONTROL_CHARACTERS_MESSAGE}",
            code="name_invalid",
            details={"field": "name"},
        )
    return name


def _check_birthday(birthday: date | None) -> None:
    # One day of slack: the store's today may already be tomorrow in UTC.
    if birthday is not None and not EARLIEST_BIRTHDAY <= birthday <= date.today() + timedelta(1):
        raise InvalidInput(
            f"birthday {birthday.isoformat()} is not a plausible date of birth "
            f"(expected between {EARLIEST_BIRTHDAY.isoformat()} and today)",
            code="birthday_invalid",
            details={"field": "birthday"},
        )


def _parse_given_card(card_number: str) -> str:
    """A card handed over at enrolment; its errors name the enrolment field, `card_number`."""
    try:
        return parse_card(card_number)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, code=exc.code, details={"field": "card_number"}) from None


def enrol_customer(
    *,
    uow: UnitOfWork,
    settings: Settings,
    secret: StoreSecret,
    phone: str,
    name: str,
    birthday: date | None = None,
    card_number: str | None = None,
    consents: dict[str, bool] | None = None,
    referred_by: str | None = None,
    email: str | None = None,
) -> CustomerProfile:
    """Register a customer by phone, issuing a card number unless one is handed over, with
    their own referral code and, if `referred_by` names one, who brought them: one transaction,
    so an unknown code (422 `referral_code_unknown`) leaves nothing enrolled. An `email` is
    optional (422 `email_invalid` refuses the enrolment); outreach uses it only with the `email`
    consent."""
    e164 = normalise_phone(phone, settings.store.region)
    name = _check_name(name)
    _check_birthday(birthday)
    email = normalise_email(email) if email is not None else None
    if card_number is None:
        number = issue_card_number(settings.cards.prefix, settings.cards.length)
    else:
        number = _parse_given_card(card_number)
    customer = Customer(
        id=uuid4().hex,
        name=name,
        phone_hash=phone_lookup_hash(secret, e164),
        phone_e164=e164 if settings.privacy.store_plain_phone else None,
        phone_masked=mask_phone(e164),
        birthday=birthday,
        email=email,
        consents=dict(consents or {}),
    )
    session = uow.session
    if session.exec(select(Customer.id).where(Customer.phone_hash == customer.phone_hash)).first():
        raise Conflict("this phone number is already enrolled", code="phone_taken")
    if session.get(Card, number) is not None:
        raise Conflict("this card number belongs to another customer", code="card_taken")
    session.add(customer)
    session.flush()
    referral_code_for(uow=uow, customer_id=customer.id)
    if referred_by is not None:
        record_referral(uow=uow, code=referred_by, new_customer_id=customer.id)
    session.add(Card(number=number, customer_id=customer.id))
    try:
        uow.commit()
    except IntegrityError:
        # Two tills enrolling the same phone at once: the unique index decides.
        raise Conflict(
            "this phone number or card is already enrolled", code="phone_taken"
        ) from None
    # The plain number goes back to whoever just typed it, even when it is not stored.
    return replace(_profile(customer, [number]), phone=e164)


def get_customer(*, uow: UnitOfWork, customer_id: str) -> CustomerProfile:
    profile = _load_profile(uow, col(Customer.id) == customer_id)
    if profile is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    return profile


def add_card(
    *, uow: UnitOfWork, settings: Settings, customer_id: str, card_number: str | None = None
) -> tuple[str, CustomerProfile]:
    """Attach another card (a replacement, a family card) to an existing customer: the one
    handed over (Luhn-checked), or a newly issued number. Returns (the card, the profile)."""
    if card_number is None:
        number = issue_card_number(settings.cards.prefix, settings.cards.length)
    else:
        number = _parse_given_card(card_number)
    if uow.session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    if uow.session.get(Card, number) is not None:
        raise Conflict("this card number is already in use", code="card_taken")
    uow.session.add(Card(number=number, customer_id=customer_id))
    try:
        uow.commit()
    except IntegrityError:  # two tills attaching the same card at once: the key decides
        raise Conflict("this card number is already in use", code="card_taken") from None
    return number, get_customer(uow=uow, customer_id=customer_id)


def loyalty_qr(*, secret: StoreSecret, customer_id: str, now: datetime) -> str:
    return mint_qr(secret, customer_id, int(now.timestamp()))


def identify_customer(
    *,
    uow: UnitOfWork,
    settings: Settings,
    secret: StoreSecret,
    method: IdMethod,
    value: str,
    now: datetime,
) -> CustomerProfile:
    """The profile of whoever a phone, card or loyalty QR names (`identify`, then the profile
    with its cards); bad tokens are refused with a reason."""
    found = identify(
        uow=uow, settings=settings, secret=secret, kind=method.value, value=value, now=now
    )
    return get_customer(uow=uow, customer_id=found.id)


@dataclass(frozen=True, slots=True)
class LoyaltySummary:
    balance: int
    lifetime_spend: int
    tier: str | None
    next_tier: str | None
    missing_for_next: int | None
    expiring_points: int | None
    expiring_at: datetime | None


def loyalty_summary(*, uow: UnitOfWork, rules: CompiledRules, customer_id: str) -> LoyaltySummary:
    """Balance, tier and the nearest expiry, for the customer's profile page."""
    customer = uow.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    balance = customer.points_balance
    # all lots of the nearest day, read from the customer's lot checkpoint on
    nearest = expiring_now(uow=uow, customer_id=customer_id, balance=balance, tz=rules.tz or UTC)
    tier = tier_status(rules.tiers, customer.lifetime_spend)
    return LoyaltySummary(
        balance=balance,
        lifetime_spend=customer.lifetime_spend,
        tier=tier.name,
        next_tier=tier.next,
        missing_for_next=tier.missing,
        expiring_points=nearest.points if nearest else None,
        expiring_at=nearest.expires_at if nearest else None,
    )
