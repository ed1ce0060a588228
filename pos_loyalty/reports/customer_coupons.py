"""A customer's coupons, newest first, as the back office lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    code: str
    label: str
    status: str
    expires_at: datetime
    redeemed_at: datetime | None


def customer_coupons(*, uow: UnitOfWork, customer_id: str, limit: int = 50) -> list[HeldCoupon]:
    """Support asks "which coupons does she hold and which did she use": every status is listed."""
    stmt = (
        select(
            col(Coupon.code),
            col(Coupon.label),
            col(Coupon.status),
            col(Coupon.expires_at),
            col(Coupon.redeemed_at),
        )
        .where(col(Coupon.owner_customer_id) == customer_id)
        .order_by(col(Coupon.created_at).desc())
        .limit(limit)
    )
    return [HeldCoupon(*row) for row in uow.session.execute(stmt).all()]
