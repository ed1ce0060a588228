"""Request and response bodies of the HTTP API (never table objects)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from pos_loyalty.coupons.wallet import HeldCoupon
from pos_loyalty.customers.service import CustomerProfile, IdMethod
from pos_loyalty.plain_text import PlainText
from pos_loyalty.rules.payload import BasketIn, MoneyField, QtyField


class Request(BaseModel):
    """Unknown fields are refused: a typo in a till integration must not pass silently."""

    model_config = ConfigDict(extra="forbid")


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# What a till may type: digits, "+", spaces, brackets, dots, slashes, hyphens ("8 (916) 123-45-67").
# The number itself is then checked for the store's region (422 phone_invalid).
PHONE_PATTERN = r"^[0-9+() ./-]*[0-9][0-9+() ./-]*$"
Phone = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PHONE_PATTERN)]
# A card as a till sends it: the number (spaces and hyphens between groups), a barcode scan (with
# its AIM prefix such as "]E0"), or a magnetic-stripe track 1 or 2. The schema states the format
# `identity.tokens.parse_card` enforces, which answers with its own codes (422 card_malformed,
# card_bad_checksum), so the pattern is documentation the server keeps, not a second check.
CARD_PATTERN = (
    r"^\s*(%B[0-9]{8,19}\^[^^]{0,26}\^[^?]*\?.?"
    r"|;[0-9]{8,19}=[^?]*\?.?"
    r"|(\][A-Za-z][0-9A-Za-z])?[\s-]*([0-9][\s-]*){8,19})\s*$"
)
CardText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(json_schema_extra={"pattern": CARD_PATTERN}),
]
QrText = Annotated[str, StringConstraints(min_length=1, max_length=512)]
LaneId = Annotated[PlainText, StringConstraints(min_length=1, max_length=64)]
ConsentName = Annotated[PlainText, StringConstraints(max_length=32)]
# An e-mail address as typed; `customers.emails.normalise_email` checks it (422 email_invalid, the
# field named), so the schema only bounds the size of what it reads.
EmailText = Annotated[str, StringConstraints(max_length=512)]


def _date_as_text(value: Any) -> Any:
    """A number would otherwise pass as seconds since 1970 and enrol a 1970 birthday."""
    if not isinstance(value, str | date):
        raise ValueError("expected a date as text, YYYY-MM-DD")
    return value


DateText = Annotated[date, BeforeValidator(_date_as_text)]


class CustomerCreate(Request):
    phone: Phone
    name: Name
    birthday: DateText | None = None
    card_number: CardText | None = None
    consents: dict[ConsentName, StrictBool] | None = Field(default=None, max_length=16)
    email: EmailText | None = None  # for e-mail outreach, with the consent `email`
    # issue 16: the referral code of the customer who brought this one
    referred_by: Annotated[PlainText, StringConstraints(min_length=1, max_length=16)] | None = None


class PointsExpiry(BaseModel):
    points: int
    at: datetime


class TierPublic(BaseModel):
    name: str | None
    next: str | None
    missing: int | None


class CouponHeldPublic(BaseModel):
    """One of the customer's coupons that could be presented now."""

    code: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_until: date  # the last local day it is good on, the date the receipt prints
    expires_at: datetime

    @classmethod
    def from_held(cls, held: HeldCoupon) -> Self:
        return cls(
            code=held.code,
            label=held.label,
            amount_off=held.amount_off,
            percent_off=held.percent_off,
            min_subtotal=held.min_subtotal,
            valid_until=held.valid_until,
            expires_at=held.expires_at,
        )


class CustomerPublic(BaseModel):
    id: str
    name: str
    phone: str
    # None (and no card numbers) in the answer to a till's phone look-up: see `/v1/identify`.
    card_number: str | None
    card_numbers: list[str]
    birthday: date | None
    email_masked: str | None = None  # "i***@example.ru"; never in an identify answer
    consents: dict[str, Any]
    qr: str | None
    balance: int
    lifetime_spend: int
    created_at: datetime
    tier: TierPublic | None = None
    points_expiring: PointsExpiry | None = None  # the nearest expiry: how many points, when
    coupons: list[CouponHeldPublic] = []  # active coupons, the soonest to expire first
    points_pending: int = 0  # earned within `[points] pending_days`: not spendable yet
    points_debt: int = 0  # a refund took back points already spent (`[refunds]` "debt")
    referral_code: str | None = None  # issue 16: given at enrolment, to bring friends

    @classmethod
    def from_profile(cls, profile: CustomerProfile, *, qr: str, with_email: bool = False) -> Self:
        """`with_email`: the masked e-mail, for the enrolment, profile and operator answers; an
        identify answer (anyone at a till, by a phone or a card) goes without it."""
        return cls(
            id=profile.id,
            name=profile.name,
            phone=profile.phone,
            card_number=profile.card_numbers[0] if profile.card_numbers else "",
            card_numbers=profile.card_numbers,
            birthday=profile.birthday,
            email_masked=profile.email_masked if with_email else None,
            consents=profile.consents,
            qr=qr,
            balance=profile.points_balance,
            lifetime_spend=profile.lifetime_spend,
            created_at=profile.created_at,
        )


class CardCreate(Request):
    """Another card for an enrolled customer: the number on a card handed over, or none to have
    one issued."""

    card_number: CardText | None = None


class CardPublic(BaseModel):
    card_number: str
    customer: CustomerPublic


class IdentifyRequest(Request):
    phone: Phone | None = None
    card: CardText | None = None
    qr: QrText | None = None
    lane_id: LaneId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [m for m in IdMethod if getattr(self, m.value) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of phone, card, qr")
        return self

    @property
    def method(self) -> IdMethod:
        return next(m for m in IdMethod if getattr(self, m.value) is not None)

    @property
    def value(self) -> str:
        value: str = getattr(self, self.method.value)
        return value


class IdentifyResponse(BaseModel):
    method: IdMethod
    customer: CustomerPublic


# --- sale path: evaluate, commit, refund, coupons, ledger -----------------------------------


class Payment(Request):
    method: Annotated[PlainText, StringConstraints(min_length=1, max_length=32)]
    paid: MoneyField


class QuoteCommit(Request):
    """`POST /v1/transactions` with a quote the till got from evaluate."""

    quote_id: Annotated[PlainText, StringConstraints(min_length=1, max_length=64)]
    payment: Payment | None = None


class BasketCommit(BasketIn):
    """`POST /v1/transactions` with the whole basket (priced afresh at commit)."""

    payment: Payment | None = None


class RefundLineIn(Request):
    sku: Annotated[PlainText, StringConstraints(min_length=1, max_length=64)]
    qty: QtyField


class RefundIn(Request):
    """`{}` refunds everything left; `lines` refunds those quantities."""

    lines: Annotated[list[RefundLineIn], Field(min_length=1, max_length=1000)] | None = None


class LedgerEntryPublic(BaseModel):
    id: int
    kind: str
    points: int
    created_at: datetime
    expires_at: datetime | None
    transaction_id: str | None
    refund_id: str | None
    reverses_id: int | None
    rule_id: str | None
    note: str


class LedgerPage(BaseModel):
    customer_id: str
    balance: int
    entries: list[LedgerEntryPublic]
    next_cursor: int | None


class CouponPublic(BaseModel):
    code: str
    qr: str
    status: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_from: datetime
    expires_at: datetime
    valid_until: date  # the last local day it is good on, the date the receipt prints
    bearer: bool
    owner_customer_id: str | None
    rule_id: str | None
    issued_by_transaction_id: str | None
    redeemed_by_transaction_id: str | None
    redeemed_at: datetime | None
