"""What evaluate, commit, refund and the receipt answer, as the OpenAPI documents it.

These models are the contract tills code against. The routes on the sale path build their JSON
themselves (`json_io.json_response`, orjson, no second validation: see issue 18), so the models
are given to FastAPI as `response_model` for the document only: a route that returns a `Response`
is sent as it is. `tests/integration/test_openapi_responses.py` checks every answer of a real
server against these schemas, with unknown fields refused, so the document cannot drift from
what a till receives. Amounts are integers in minor units; times are RFC 3339 with offset.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import TierPublic

Qty = int | float  # whole units as integers; weighed goods with at most 3 decimal places


class LineRule(BaseModel):
    """What one rule took off this line."""

    rule_id: str
    amount: int


class QuoteLinePublic(BaseModel):
    """One basket line: `total` = subtotal − discount − burn, the money paid for it."""

    sku: str
    name: str
    category: str
    qty: Qty
    unit_price: int
    subtotal: int
    discount: int
    burn: int = Field(description="value of the points spread onto this line")
    total: int
    applied: list[LineRule]


class AppliedRulePublic(BaseModel):
    """A money discount: which rule, its printed label, how much; `capped` by its max_discount."""

    rule_id: str
    label: str
    kind: str
    amount: int
    capped: bool


class EarnedPointsPublic(BaseModel):
    rule_id: str
    label: str
    points: int


class QuotePoints(BaseModel):
    """Points this basket earns and burns, and the balance before and after."""

    earn: int
    burn: int
    balance: int
    balance_after: int
    burn_requested: int
    burn_limited_by: str | None = Field(
        description="no_customer, balance or redeem_max_percent when fewer than asked are burned"
    )
    burn_limited_message: str | None = Field(description="why, in the store's language")
    burn_value: int = Field(description="minor units paid with points")
    point_value_minor: int
    earned: list[EarnedPointsPublic]
    earn_expires_at: datetime | None = Field(description="null when points never expire")
    earn_available_at: datetime | None = Field(
        description="spendable from then (`[points] pending_days`); null: at once"
    )


class AppliedCouponPublic(BaseModel):
    code: str
    rule_id: str = Field(description='"coupon:<code>", as in lines[].applied')
    label: str
    amount: int


class RejectedCouponPublic(BaseModel):
    code: str
    reason: str = Field(description="unknown, forged, redeemed, expired, not_yet_valid, …")
    message: str


class EarnedBy(BaseModel):
    """What earned the coupon in this basket: the line positions and the threshold, if any."""

    lines: list[int]
    min_subtotal: int | None


class CouponToIssuePublic(BaseModel):
    """A coupon the sale earns; the commit issues it and the receipt prints it."""

    rule_id: str
    label: str
    amount_off: int | None = None
    percent_off: int | None = None
    min_subtotal: int
    valid_from: datetime
    expires_at: datetime
    valid_until: date = Field(description="the last local day it is good on (printed)")
    skus: list[str] | None = Field(default=None, description="personal coupons: for these goods")
    categories: list[str] | None = None
    trigger: str | None = None
    reason: str | None = Field(default=None, description="why this offer, in the store's language")
    stack_group: str | None = Field(default=None, description='absent: "coupon"')
    bearer: bool | None = Field(default=None, description="anyone may present it")
    earned_by: EarnedBy | None


class QuoteCoupons(BaseModel):
    applied: list[AppliedCouponPublic]
    rejected: list[RejectedCouponPublic]
    to_issue: list[CouponToIssuePublic]


class HintPublic(BaseModel):
    """For the cashier, e.g. «Добавьте 85,00 ₽ — получите купон на 70,00 ₽»."""

    type: str
    rule_id: str
    missing: int
    message: str


class StampProgressPublic(BaseModel):
    """`count`/`every` after this basket; `advance` is what the commit adds to the card."""

    rule_id: str
    label: str
    count: int
    every: int
    free_units: int
    advance: int


class NotAppliedPublic(BaseModel):
    rule_id: str
    label: str
    code: str
    message: str


class NoticePublic(BaseModel):
    """Goods out of the program, or a discount a price floor cut."""

    code: str
    message: str
    rule_id: str | None
    sku: str | None
    amount: int


class PromoCodeUsePublic(BaseModel):
    code: str
    rule_id: str


class QuoteCustomer(BaseModel):
    """The customer as the till may show them: short name and masked phone only."""

    id: str
    name: str
    phone: str
    tier: str | None
    balance: int
    lifetime_spend: int


class QuotePublic(BaseModel):
    """`POST /v1/baskets/evaluate`: the priced basket, every number with the rule behind it."""

    quote_id: str
    expires_at: datetime
    customer: QuoteCustomer | None
    rules_version: str
    currency: str
    evaluated_at: datetime
    customer_id: str | None
    lines: list[QuoteLinePublic]
    subtotal: int
    discount_total: int
    total: int = Field(description="subtotal − discount_total − points.burn_value")
    applied: list[AppliedRulePublic]
    points: QuotePoints
    coupons: QuoteCoupons
    hints: list[HintPublic]
    tier: TierPublic | None
    stamps: list[StampProgressPublic]
    notices: list[NoticePublic]
    not_applied: list[NotAppliedPublic] | None = Field(
        default=None, description="only with ?explain=true"
    )
    promo_codes: list[PromoCodeUsePublic] | None = Field(
        default=None, description="only when the basket carried promo codes"
    )


class CouponIssuedPublic(BaseModel):
    """A coupon the sale issued: its typable code and its QR payload."""

    code: str
    qr: str
    label: str
    rule_id: str | None
    amount_off: int | None = None
    percent_off: int | None = None
    min_subtotal: int
    valid_from: datetime
    expires_at: datetime
    valid_until: date
    bearer: bool


class PaymentPublic(BaseModel):
    method: str
    paid: int
    change: int


class PointsExpiringPublic(BaseModel):
    points: int
    expires_at: datetime


class SalePublic(QuotePublic):
    """`POST /v1/transactions` (201): the quote as committed, plus the sale."""

    transaction_id: str
    created_at: datetime
    lane_id: str | None
    store_id: str
    coupons_issued: list[CouponIssuedPublic]
    balance_after: int | None = Field(description="null without a customer")
    payment: PaymentPublic | None
    points_expiring: PointsExpiringPublic | None = Field(
        default=None, description="with a customer: the next points to expire (the receipt's)"
    )


class RefundLinePublic(BaseModel):
    sku: str
    name: str
    qty: Qty
    amount: int
    burn: int


class RefundPoints(BaseModel):
    earn_reversed: int
    burn_returned: int
    balance_after: int | None
    shortfall: int = Field(description="earned points already spent when they were taken back")
    debt: int


class StampsReversed(BaseModel):
    rule_id: str
    units: int


class RefundCoupons(BaseModel):
    cancelled: list[str]
    already_used: list[str]
    returned: list[str]


class RefundKept(BaseModel):
    """Kept from the money by the `[refunds]` policy: spent points, spent coupons."""

    total: int
    for_points: int
    points_paid: int
    for_coupons: dict[str, int]


class RefundPublic(BaseModel):
    """`POST /v1/transactions/{id}/refund`: what was given back and taken back."""

    refund_id: str
    transaction_id: str
    created_at: datetime
    full: bool
    status: str
    amount: int = Field(description="money returned, after what the policy kept")
    goods_amount: int
    currency: str
    lines: list[RefundLinePublic]
    points: RefundPoints
    lifetime_spend_reversed: int
    stamps_reversed: list[StampsReversed]
    coupons: RefundCoupons
    kept: RefundKept


class ReceiptHeader(BaseModel):
    store_id: str
    store_name: str
    lane_id: str | None
    transaction_id: str
    created_at: datetime


class ReceiptItemPublic(BaseModel):
    sku: str
    name: str
    qty: Qty
    unit_price: int
    subtotal: int
    discount: int
    burn: int
    total: int


class ReceiptDiscount(BaseModel):
    rule_id: str
    label: str
    amount: int


class ReceiptTotals(BaseModel):
    subtotal: int
    discount_total: int
    points_burned: int
    burn_value: int
    total: int
    payment_method: str | None
    paid: int | None
    change: int


class ReceiptStampCard(BaseModel):
    rule_id: str
    label: str
    count: int
    every: int


class ReceiptLoyalty(BaseModel):
    """What the receipt says about the customer; never the full name or phone."""

    customer_name: str
    phone_masked: str
    tier: str | None
    points_earned: int
    points_burned: int
    balance: int
    next_expiry: PointsExpiringPublic | None
    stamps: list[ReceiptStampCard]
    hint: str | None
    debt: int
    pending: int
    pending_until: datetime | None


class ReceiptCoupon(BaseModel):
    code: str
    display_code: str
    qr: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    skus: list[str]
    categories: list[str]
    sku_names: list[str]
    category_names: list[str]
    valid_from: datetime
    expires_at: datetime


class ReceiptRefund(BaseModel):
    refund_id: str
    created_at: datetime
    amount: int
    full: bool
    points_earn_reversed: int
    points_burn_returned: int
    coupons_cancelled: list[str]
    coupons_returned: list[str]
    kept: int


class ReceiptPublic(BaseModel):
    """`GET /v1/receipts/{transaction_id}`: every block of the receipt, in printing order."""

    kind: Literal["sale", "refund"]
    transaction_id: str
    currency: str
    locale: str
    timezone: str
    header: ReceiptHeader
    items: list[ReceiptItemPublic]
    discounts: list[ReceiptDiscount]
    totals: ReceiptTotals
    loyalty: ReceiptLoyalty | None
    coupons: list[ReceiptCoupon]
    refund: ReceiptRefund | None
    footer: str
    # `copy` by its JSON name (a field named so would shadow BaseModel.copy)
    copy_: bool = Field(alias="copy", description="printed again: marked «КОПИЯ» on paper")
