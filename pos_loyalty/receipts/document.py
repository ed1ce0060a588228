"""The receipt as device-neutral blocks: what a sale printed, before any paper width or code page.

Amounts stay integer minor units and times stay aware datetimes; words, money and dates are put
into the store's locale only when the document is laid out (`layout.py`), so the same document
serves the JSON endpoint, plain text, ESC/POS and the PNG preview.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from pos_loyalty.coupons.codes import format_code
from pos_loyalty.money import Qty, qty_to_json
from pos_loyalty.plain_text import printable

# Store texts that keep their line breaks (each line is a paragraph on paper).
_MULTI_LINE_FIELDS = frozenset({"footer"})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per block class, filled on first use


class _PrintableText:
    """The one place receipt text is made printable: every text field of every block (and every
    text in a tuple field) is cleaned when the block is made, whatever built it — a sale, a
    refund, a reprint of a row stored before the API refused control characters, a preview — so
    the JSON, the .txt, the PNG and the printer's bytes all carry the same text, and no ESC/GS/
    DLE/FS sequence in a line name, label, customer name or store text can reach a printer."""

    __slots__ = ()

    def __post_init__(self) -> None:
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields(cast(Any, self)))
        for name in names:
            value = getattr(self, name)
            if isinstance(value, str):
                cleaned: Any = printable(value, keep_newlines=name in _MULTI_LINE_FIELDS)
            elif isinstance(value, tuple) and any(isinstance(v, str) for v in value):
                cleaned = tuple(printable(v) if isinstance(v, str) else v for v in value)
            else:
                continue
            if cleaned != value:
                object.__setattr__(self, name, cleaned)


@dataclass(frozen=True, slots=True)
class StoreHeader(_PrintableText):
    store_id: str
    store_name: str
    lane_id: str | None
    transaction_id: str
    created_at: datetime  # aware; shown in the store's time zone

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "store_name": self.store_name,
            "lane_id": self.lane_id,
            "transaction_id": self.transaction_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ReceiptItem(_PrintableText):
    """One sold line: `total` = subtotal − discount − burn, the money paid for it."""

    sku: str
    name: str
    qty: Qty
    unit_price: int
    subtotal: int
    discount: int
    burn: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "name": self.name,
            "qty": qty_to_json(self.qty),
            "unit_price": self.unit_price,
            "subtotal": self.subtotal,
            "discount": self.discount,
            "burn": self.burn,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class DiscountEntry(_PrintableText):
    """A money discount as printed: the rule's label and what it took off the basket."""

    rule_id: str
    label: str
    amount: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "label": self.label, "amount": self.amount}


@dataclass(frozen=True, slots=True)
class Totals(_PrintableText):
    subtotal: int
    discount_total: int
    points_burned: int  # points spent on this sale
    burn_value: int  # money those points paid
    total: int  # paid in money
    payment_method: str | None = None  # cash | card | … as the till said
    paid: int | None = None
    change: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "subtotal": self.subtotal,
            "discount_total": self.discount_total,
            "points_burned": self.points_burned,
            "burn_value": self.burn_value,
            "total": self.total,
            "payment_method": self.payment_method,
            "paid": self.paid,
            "change": self.change,
        }


@dataclass(frozen=True, slots=True)
class PointsExpiry(_PrintableText):
    """The customer's next lot of points to expire: how many and when."""

    points: int
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"points": self.points, "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True, slots=True)
class StampCard(_PrintableText):
    """Stamp progress after this sale: `count` of `every` towards the next free unit."""

    rule_id: str
    label: str
    count: int
    every: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "label": self.label,
            "count": self.count,
            "every": self.every,
        }


@dataclass(frozen=True, slots=True)
class LoyaltyBlock(_PrintableText):
    """What the receipt says about the customer; never the full name or phone."""

    customer_name: str  # "Иван П."
    phone_masked: str  # "+7 *** ***-45-67"
    tier: str | None
    points_earned: int
    points_burned: int
    balance: int  # after this sale
    next_expiry: PointsExpiry | None
    stamps: tuple[StampCard, ...]
    hint: str | None  # the upsell hint when the basket fell short of a reward
    # Points of this sale in the return window (`[points] pending_days`): not spendable before.
    pending: int = 0
    pending_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_name": self.customer_name,
            "phone_masked": self.phone_masked,
            "tier": self.tier,
            "points_earned": self.points_earned,
            "points_burned": self.points_burned,
            "balance": self.balance,
            "next_expiry": self.next_expiry.to_dict() if self.next_expiry else None,
            "stamps": [s.to_dict() for s in self.stamps],
            "hint": self.hint,
            "debt": max(0, -self.balance),
            "pending": self.pending,
            "pending_until": self.pending_until.isoformat() if self.pending_until else None,
        }


@dataclass(frozen=True, slots=True)
class IssuedCoupon(_PrintableText):
    """A coupon this sale issued, printed with a QR of its `PLC1.` form and the typable code."""

    code: str  # canonical, 11 characters without hyphens
    qr_payload: str  # PLC1.<code>.<mac>
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    skus: tuple[str, ...]
    categories: tuple[str, ...]
    valid_from: datetime
    expires_at: datetime
    # The goods as the customer reads them: product names for `skus`, the store's names for
    # `categories` (codes where none is known), in the same order.
    sku_names: tuple[str, ...] = ()
    category_names: tuple[str, ...] = ()

    @property
    def display_code(self) -> str:
        """`ABCD-EFGH-JK2`, as the cashier types it."""
        return format_code(self.code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "display_code": self.display_code,
            "qr": self.qr_payload,
            "label": self.label,
            "amount_off": self.amount_off,
            "percent_off": self.percent_off,
            "min_subtotal": self.min_subtotal,
            "skus": list(self.skus),
            "categories": list(self.categories),
            "sku_names": list(self.sku_names or self.skus),
            "category_names": list(self.category_names or self.categories),
            "valid_from": self.valid_from.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class RefundBlock(_PrintableText):
    """What a refund took back: money returned, points reversed and returned, coupons voided.

    On a refund receipt `items` are the returned lines (`total` = money returned for the line)."""

    refund_id: str
    created_at: datetime
    amount: int
    full: bool
    points_earn_reversed: int
    points_burn_returned: int
    coupons_cancelled: tuple[str, ...]  # display codes
    coupons_returned: tuple[str, ...]  # coupons the sale used, usable again after a full refund
    kept: int = 0  # kept from the money by the `[refunds]` policy (spent points, spent coupons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "created_at": self.created_at.isoformat(),
            "amount": self.amount,
            "full": self.full,
            "points_earn_reversed": self.points_earn_reversed,
            "points_burn_returned": self.points_burn_returned,
            "coupons_cancelled": list(self.coupons_cancelled),
            "coupons_returned": list(self.coupons_returned),
            "kept": self.kept,
        }


@dataclass(frozen=True, slots=True)
class ReceiptDocument(_PrintableText):
    """Every block of one receipt plus the locale, currency and time zone to show it in.

    A sale receipt has `refund` None; a refund receipt has it, with the returned lines as items."""

    header: StoreHeader
    items: tuple[ReceiptItem, ...]
    discounts: tuple[DiscountEntry, ...]
    totals: Totals
    loyalty: LoyaltyBlock | None
    coupons: tuple[IssuedCoupon, ...]
    footer: str
    currency: str
    locale: str
    timezone: str
    refund: RefundBlock | None = None
    copy: bool = False  # printed again after the original was: marked "КОПИЯ" on paper

    @property
    def kind(self) -> str:
        return "refund" if self.refund is not None else "sale"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: minor units, RFC 3339 times, the blocks in printing order."""
        return {
            "kind": self.kind,
            "transaction_id": self.header.transaction_id,
            "currency": self.currency,
            "locale": self.locale,
            "timezone": self.timezone,
            "header": self.header.to_dict(),
            "items": [item.to_dict() for item in self.items],
            "discounts": [d.to_dict() for d in self.discounts],
            "totals": self.totals.to_dict(),
            "loyalty": self.loyalty.to_dict() if self.loyalty else None,
            "coupons": [c.to_dict() for c in self.coupons],
            "refund": self.refund.to_dict() if self.refund else None,
            "footer": self.footer,
            "copy": self.copy,
        }
