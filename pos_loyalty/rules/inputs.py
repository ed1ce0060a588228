"""What the engine prices: the basket, a snapshot of the customer, the coupons presented.

Plain slotted dataclasses, built by the service layer from validated requests and storage (see
`payload.py` for the request schema); the engine trusts them and stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from pos_loyalty.money import Qty


@dataclass(frozen=True, slots=True)
class BasketLine:
    sku: str
    name: str
    category: str
    qty: Qty  # int, or Decimal with at most 3 places for weighed goods
    unit_price: int  # minor units


@dataclass(frozen=True, slots=True)
class Basket:
    store_id: str
    lane_id: str
    lines: tuple[BasketLine, ...] | list[BasketLine]
    points_to_redeem: int = 0


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    """The customer as storage knew them when the basket was evaluated."""

    id: str
    lifetime_spend: int = 0
    points_balance: int = 0
    segments: frozenset[str] = frozenset()
    first_purchase: bool = False
    stamps: dict[str, int] = field(default_factory=dict)  # rule_id → qualifying units so far
    birthday: date | None = None


@dataclass(frozen=True, slots=True)
class CouponSnapshot:
    """A coupon as storage holds it; empty `skus` and `categories` mean the whole basket."""

    code: str
    label: str
    amount_off: int | None = None
    percent_off: int | None = None
    min_subtotal: int = 0
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    stack_group: str | None = "coupon"
    valid_from: datetime | None = None
    expires_at: datetime | None = None
    owner_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PresentedCoupon:
    """A code the till sent, already looked up: `coupon` is None when `problem` says why
    (unknown, forged, redeemed, expired, not_owned, cancelled …)."""

    code: str
    coupon: CouponSnapshot | None = None
    problem: str | None = None
