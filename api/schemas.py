"""Request and response bodies of the HTTP API (never table objects)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pos_loyalty.customers.service import CustomerProfile, IdMethod


class Request(BaseModel):
    """Unknown fields are refused: a typo in a till integration must not pass silently."""

    model_config = ConfigDict(extra="forbid")


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=32)]
CardText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
QrText = Annotated[str, StringConstraints(min_length=1, max_length=512)]
LaneId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CustomerCreate(Request):
    phone: Phone
    name: Name
    birthday: date | None = None
    card_number: CardText | None = None
    consents: dict[Annotated[str, StringConstraints(max_length=32)], bool] | None = Field(
        default=None, max_length=16
    )


class CustomerPublic(BaseModel):
    id: str
    name: str
    phone: str
    card_number: str
    card_numbers: list[str]
    birthday: date | None
    consents: dict[str, Any]
    qr: str
    balance: int
    lifetime_spend: int
    created_at: datetime

    @classmethod
    def from_profile(cls, profile: CustomerProfile, *, qr: str) -> Self:
        return cls(
            id=profile.id,
            name=profile.name,
            phone=profile.phone,
            card_number=profile.card_numbers[0] if profile.card_numbers else "",
            card_numbers=profile.card_numbers,
            birthday=profile.birthday,
            consents=profile.consents,
            qr=qr,
            balance=profile.points_balance,
            lifetime_spend=profile.lifetime_spend,
            created_at=profile.created_at,
        )


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
