"""The coupon table: one row per coupon, its status changed only by conditional updates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from pos_loyalty.storage.types import UTCDateTime, utcnow


class CouponStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"

    code: str = Field(primary_key=True, max_length=11)  # canonical, without hyphens
    # None: a bearer coupon anyone may present; otherwise only its owner may.
    owner_customer_id: str | None = Field(default=None, max_length=32, index=True)
    rule_id: str | None = Field(default=None, max_length=64)
    label: str = Field(max_length=200)
    amount_off: int | None = Field(default=None, sa_type=BigInteger)
    percent_off: int | None = None
    min_subtotal: int = Field(default=0, sa_type=BigInteger)
    skus: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # When presented: of the discounts in one stack group only the best applies; None stacks.
    stack_group: str | None = Field(default="coupon", max_length=100)
    valid_from: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=CouponStatus.ISSUED.value, max_length=12)
    issued_by_transaction_id: str | None = Field(default=None, max_length=32, index=True)
    redeemed_by_transaction_id: str | None = Field(default=None, max_length=32)
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
