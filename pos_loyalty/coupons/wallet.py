"""The coupons a customer holds now, so the cashier can say "you have a 70 ₽ coupon"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlmodel import col, select

from pos_loyalty.coupons.codes import format_code
from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.rules.quote import coupon_valid_until
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    code: str  # as printed, with hyphens
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_until: date  # the last local day it is good on, as the receipt prints it
    expires_at: datetime


def active_coupons(
    *, uow: UnitOfWork, customer_id: str, now: datetime, tz: tzinfo
) -> list[HeldCoupon]:
    """The customer's own coupons that could be presented now, the soonest to expire first."""
    rows = uow.session.exec(
        select(Coupon)
        .where(
            col(Coupon.owner_customer_id) == customer_id,
            col(Coupon.status) == CouponStatus.ISSUED.value,
            col(Coupon.valid_from) <= now,
            col(Coupon.expires_at) > now,
        )
        .order_by(col(Coupon.expires_at), col(Coupon.code))
    ).all()
    return [
        HeldCoupon(
            code=format_code(c.code),
            label=c.label,
            amount_off=c.amount_off,
            percent_off=c.percent_off,
            min_subtotal=c.min_subtotal,
            valid_until=coupon_valid_until(c.expires_at, tz),
            expires_at=c.expires_at,
        )
        for c in rows
    ]
