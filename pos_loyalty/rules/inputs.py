"""What the engine prices: the basket, a snapshot of the customer, the coupons presented.

Plain slotted dataclasses, built by the service layer from validated requests and storage (see
`payload.py` for the request schema); the engine trusts them and stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    promo_codes: frozenset[str] = frozenset()  # typed at the till, normalised (rules/promo.py)


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """One sku or category in the customer's history: the (store-local) days it was bought,
    ascending and distinct, and what was paid for it on each (parallel tuples: a heavy customer
    has thousands of days, built at every first evaluate)."""

    key: str  # the sku or the category
    name: str  # the product's name for a sku, the category itself for a category
    category: str
    days: tuple[date, ...]
    amounts: tuple[int, ...]  # paid in money on each day, minor units


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """The customer's past purchases and personal coupons, aggregated by storage for the
    personal rules (`kind = "personal"`); days before `since` were not loaded."""

    since: date
    last_purchase_at: datetime | None = None  # the latest sale before this basket
    visits: int = 0  # sales since `since`
    spend: int = 0  # paid in money since `since`
    skus: Mapping[str, ItemHistory] = field(default_factory=dict)
    categories: Mapping[str, ItemHistory] = field(default_factory=dict)
    active_coupons: frozenset[str] = frozenset()  # rule ids with an issued, unexpired coupon
    last_issued: Mapping[str, datetime] = field(default_factory=dict)  # rule id → latest coupon


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
    history: CustomerHistory | None = None  # needed only by personal rules


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
