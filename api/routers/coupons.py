"""`GET /v1/coupons/{code}`: a coupon's status, by typed code (any case, hyphens optional) or QR."""

from __future__ import annotations

from datetime import tzinfo

from fastapi import APIRouter

from api.deps import StoreDep, TillScope
from api.schemas import CouponPublic
from pos_loyalty.coupons.codes import format_code
from pos_loyalty.coupons.service import CouponView, coupon_status
from pos_loyalty.rules.quote import coupon_valid_until

router = APIRouter(prefix="/v1", tags=["coupons"])


@router.get("/coupons/{code}", response_model=CouponPublic)
def coupon(code: str, store: StoreDep, _: TillScope) -> CouponPublic:
    with store.uow() as uow:
        view = coupon_status(uow=uow, secret=store.secret, text=code, now=store.now())
        return _public(view, store.settings.store.tz)


def _public(view: CouponView, tz: tzinfo) -> CouponPublic:
    c = view.coupon
    return CouponPublic(
        code=format_code(c.code),
        qr=view.qr,
        status=view.status,
        label=c.label,
        amount_off=c.amount_off,
        percent_off=c.percent_off,
        min_subtotal=c.min_subtotal,
        valid_from=c.valid_from,
        expires_at=c.expires_at,
        valid_until=coupon_valid_until(c.expires_at, tz),
        bearer=c.owner_customer_id is None,
        owner_customer_id=c.owner_customer_id,
        rule_id=c.rule_id,
        issued_by_transaction_id=c.issued_by_transaction_id,
        redeemed_by_transaction_id=c.redeemed_by_transaction_id,
        redeemed_at=c.redeemed_at,
    )
