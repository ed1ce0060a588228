"""`GET /v1/coupons/{code}`: a coupon's status, by typed code (any case, hyphens optional) or QR."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import StoreDep, TillScope
from api.schemas import CouponPublic
from pos_loyalty.coupons.codes import format_code
from pos_loyalty.coupons.service import CouponView, coupon_status

router = APIRouter(prefix="/v1", tags=["coupons"])


@router.get("/coupons/{code}", response_model=CouponPublic)
def coupon(code: str, store: StoreDep, _: TillScope) -> CouponPublic:
    with store.uow() as uow:
        view = coupon_status(uow=uow, secret=store.secret, text=code, now=store.now())
        return _public(view)


def _public(view: CouponView) -> CouponPublic:
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
        bearer=c.owner_customer_id is None,
        owner_customer_id=c.owner_customer_id,
        rule_id=c.rule_id,
        issued_by_transaction_id=c.issued_by_transaction_id,
        redeemed_by_transaction_id=c.redeemed_by_transaction_id,
        redeemed_at=c.redeemed_at,
    )
