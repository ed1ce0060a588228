"""Builds the receipt document of a committed sale.

The sale's stored `result` (the commit's response: the quote's fields plus `transaction_id`,
`coupons_issued`, `balance_after`) is the source of every amount, so a reprint shows exactly what
the customer paid. `receipt_from_input` is the pure part (tests give it an engine quote directly);
`build_receipt` gathers its input from storage in one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import col, select

from pos_loyalty.coupons.codes import coupon_qr, format_code
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.service import get_customer
from pos_loyalty.errors import NotFound
from pos_loyalty.ledger.expiring import nearest_expiring
from pos_loyalty.ledger.service import lot_state
from pos_loyalty.money import Qty, parse_qty
from pos_loyalty.receipts.document import (
    DiscountEntry,
    IssuedCoupon,
    LoyaltyBlock,
    PointsExpiry,
    ReceiptDocument,
    ReceiptItem,
    RefundBlock,
    StampCard,
    StoreHeader,
    Totals,
)
from pos_loyalty.sales.models import Refund, SaleTransaction, TransactionLine
from pos_loyalty.security import StoreSecret
from pos_loyalty.settings import StoreConfig
from pos_loyalty.storage import UnitOfWork


class ReceiptNotFound(NotFound):
    code = "transaction_not_found"


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    """Everything one receipt shows, gathered from storage or given directly (tests, previews)."""

    transaction_id: str
    created_at: datetime
    sale: Mapping[str, Any]  # Quote.to_dict() plus what the commit added (balance_after, payment)
    lane_id: str | None = None
    customer_name: str | None = None  # as printed: "Иван П."
    phone_masked: str | None = None
    coupons: Sequence[IssuedCoupon] = ()
    next_expiry: PointsExpiry | None = None
    payment_method: str | None = None
    paid: int | None = None
    change: int = 0


def _qty(value: Any) -> Qty:
    if isinstance(value, float):
        value = Decimal(repr(value))  # JSON numbers with ≤ 3 places print back exactly
    return parse_qty(value)


def _items(sale: Mapping[str, Any]) -> tuple[ReceiptItem, ...]:
    return tuple(
        ReceiptItem(
            sku=line["sku"],
            name=line["name"],
            qty=_qty(line["qty"]),
            unit_price=int(line["unit_price"]),
            subtotal=int(line["subtotal"]),
            discount=int(line.get("discount", 0)),
            burn=int(line.get("burn", 0)),
            total=int(line["total"]),
        )
        for line in sale.get("lines", ())
    )


def _loyalty(data: ReceiptInput) -> LoyaltyBlock | None:
    sale = data.sale
    if not sale.get("customer_id") or data.customer_name is None:
        return None
    points = sale.get("points") or {}
    tier = sale.get("tier") or {}
    balance = sale.get("balance_after", points.get("balance_after", 0))
    hint = next((h["message"] for h in sale.get("hints", ()) if h.get("type") == "upsell"), None)
    return LoyaltyBlock(
        customer_name=data.customer_name,
        phone_masked=data.phone_masked or "",
        tier=tier.get("name"),
        points_earned=int(points.get("earn", 0)),
        points_burned=int(points.get("burn", 0)),
        balance=int(balance),
        next_expiry=data.next_expiry,
        stamps=tuple(
            StampCard(s["rule_id"], s["label"], int(s["count"]), int(s["every"]))
            for s in sale.get("stamps", ())
        ),
        hint=hint,
        pending=int(points.get("earn", 0)) if points.get("earn_available_at") else 0,
        pending_until=(
            datetime.fromisoformat(points["earn_available_at"])
            if points.get("earn_available_at")
            else None
        ),
    )


def receipt_from_input(data: ReceiptInput, *, store: StoreConfig) -> ReceiptDocument:
    """The document for one sale; pure (no clock, no storage)."""
    sale = data.sale
    points = sale.get("points") or {}
    payment = sale.get("payment") or {}
    totals = Totals(
        subtotal=int(sale["subtotal"]),
        discount_total=int(sale.get("discount_total", 0)),
        points_burned=int(points.get("burn", 0)),
        burn_value=int(points.get("burn_value", 0)),
        total=int(sale["total"]),
        payment_method=data.payment_method or payment.get("method"),
        paid=data.paid if data.paid is not None else payment.get("paid"),
        change=data.change or int(payment.get("change", 0) or 0),
    )
    return ReceiptDocument(
        header=StoreHeader(
            store_id=store.id,
            store_name=store.name,
            lane_id=data.lane_id,
            transaction_id=data.transaction_id,
            created_at=data.created_at,
        ),
        items=_items(sale),
        discounts=tuple(
            DiscountEntry(a["rule_id"], a["label"], int(a["amount"]))
            for a in sale.get("applied", ())
            if int(a["amount"])
        ),
        totals=totals,
        loyalty=_loyalty(data),
        coupons=tuple(data.coupons),
        footer=store.footer,
        currency=sale.get("currency", store.currency),
        locale=store.locale,
        timezone=store.timezone,
    )


def _product_names(uow: UnitOfWork, customer_id: str | None, skus: set[str]) -> dict[str, str]:
    """The names the customer's own receipts gave these skus (the newest wins): what a coupon
    for a favourite or replenished product calls it."""
    if not skus or customer_id is None:
        return {}
    rows = uow.session.execute(
        select(col(TransactionLine.sku), col(TransactionLine.name))
        .join(SaleTransaction, col(SaleTransaction.id) == col(TransactionLine.transaction_id))
        .where(
            col(SaleTransaction.customer_id) == customer_id,
            col(TransactionLine.sku).in_(sorted(skus)),
        )
        .order_by(col(SaleTransaction.created_at), col(TransactionLine.id))
    ).all()
    return {sku: name for sku, name in rows}


def _issued_coupons(
    *, uow: UnitOfWork, store: StoreConfig, secret: StoreSecret, transaction: SaleTransaction
) -> list[IssuedCoupon]:
    rows = uow.session.exec(
        select(Coupon).where(col(Coupon.issued_by_transaction_id) == transaction.id)
    ).all()
    products = _product_names(
        uow, transaction.customer_id, {sku for c in rows for sku in c.skus or ()}
    )
    # Print in the order the commit reported them (highest value first for personal offers).
    reported = [
        str(c.get("code", "")).replace("-", "")
        for c in transaction.result.get("coupons_issued", ())
    ]
    rows = sorted(
        rows,
        key=lambda c: (reported.index(c.code) if c.code in reported else len(reported), c.code),
    )
    return [
        IssuedCoupon(
            code=c.code,
            qr_payload=coupon_qr(secret, c.code),
            label=c.label,
            amount_off=c.amount_off,
            percent_off=c.percent_off,
            min_subtotal=c.min_subtotal,
            skus=tuple(c.skus),
            categories=tuple(c.categories),
            valid_from=c.valid_from,
            expires_at=c.expires_at,
            sku_names=tuple(products.get(sku, sku) for sku in c.skus),
            category_names=tuple(store.category_names.get(cat, cat) for cat in c.categories),
        )
        for c in rows
    ]


def _customer_shown(uow: UnitOfWork, transaction: SaleTransaction) -> tuple[str, str]:
    """The name and masked phone as the sale recorded them; the profile if the body lacks them."""
    assert transaction.customer_id is not None
    recorded = transaction.result.get("customer") or {}
    name, phone = recorded.get("name"), recorded.get("phone")
    if not name or not phone:
        profile = get_customer(uow=uow, customer_id=transaction.customer_id)
        name, phone = profile.short_name, profile.phone_masked
    return str(name), str(phone)


def _sale(uow: UnitOfWork, transaction_id: str) -> SaleTransaction:
    transaction = uow.session.get(SaleTransaction, transaction_id)
    if transaction is None:
        raise ReceiptNotFound(
            f"no sale with transaction id {transaction_id!r}",
            details={"transaction_id": transaction_id},
        )
    return transaction


def receipt_ids(uow: UnitOfWork, receipt_id: str, refund_id: str | None) -> tuple[str, str | None]:
    """(transaction id, refund id) of a receipt named by a sale's id, or by a refund's id alone:
    a refund slip is a document of its own, fetched and printed like a sale's receipt."""
    if refund_id is not None or uow.session.get(SaleTransaction, receipt_id) is not None:
        return receipt_id, refund_id
    refund = uow.session.get(Refund, receipt_id)
    if refund is not None:
        return refund.transaction_id, refund.id
    return receipt_id, None


def build_receipt(
    *,
    uow: UnitOfWork,
    store: StoreConfig,
    secret: StoreSecret,
    transaction_id: str,
    refund_id: str | None = None,
) -> ReceiptDocument:
    """The receipt of a committed sale, or with `refund_id` the slip of one of its refunds (what
    an outbox row of kind "refund" prints). The points expiry shown is the customer's current.
    `transaction_id` may also be a refund's id: its slip."""
    transaction_id, refund_id = receipt_ids(uow, transaction_id, refund_id)
    if refund_id is not None:
        return build_refund_receipt(
            uow=uow, store=store, transaction_id=transaction_id, refund_id=refund_id
        )
    transaction = _sale(uow, transaction_id)
    customer_name = phone_masked = None
    next_expiry = None
    if transaction.customer_id:
        customer_name, phone_masked = _customer_shown(uow, transaction)
        next_expiry = _points_expiring(uow, transaction, store)
    data = ReceiptInput(
        transaction_id=transaction.id,
        created_at=transaction.created_at,
        sale=transaction.result,
        lane_id=transaction.lane_id,
        customer_name=customer_name,
        phone_masked=phone_masked,
        coupons=_issued_coupons(uow=uow, store=store, secret=secret, transaction=transaction),
        next_expiry=next_expiry,
        payment_method=transaction.payment_method,
        paid=transaction.paid,
        change=transaction.change,
    )
    return receipt_from_input(data, store=store)


def _points_expiring(
    uow: UnitOfWork, transaction: SaleTransaction, store: StoreConfig
) -> PointsExpiry | None:
    """The "Сгорят" line as the sale recorded it (the same on every reprint); for sales made
    before it was recorded, computed from the ledger now."""
    if "points_expiring" in transaction.result:
        recorded = transaction.result["points_expiring"]
        if not recorded:
            return None
        at = datetime.fromisoformat(recorded["expires_at"])
        return PointsExpiry(points=int(recorded["points"]), expires_at=at)
    assert transaction.customer_id is not None
    state = lot_state(uow=uow, customer_id=transaction.customer_id)
    found = nearest_expiring(state, store.tz)
    return PointsExpiry(points=found.points, expires_at=found.expires_at) if found else None


def build_refund_receipt(
    *, uow: UnitOfWork, store: StoreConfig, transaction_id: str, refund_id: str
) -> ReceiptDocument:
    """The refund slip: the returned lines, the money given back, points and coupons undone."""
    transaction = _sale(uow, transaction_id)
    refund = uow.session.get(Refund, refund_id)
    if refund is None or refund.transaction_id != transaction_id:
        raise ReceiptNotFound(
            f"no refund {refund_id!r} of transaction {transaction_id!r}",
            code="refund_not_found",
            details={"transaction_id": transaction_id, "refund_id": refund_id},
        )
    result = refund.result
    points = result.get("points") or {}
    coupons = result.get("coupons") or {}
    loyalty = None
    if transaction.customer_id:
        name, phone = _customer_shown(uow, transaction)
        balance = points.get("balance_after")
        if balance is None:
            balance = lot_state(uow=uow, customer_id=transaction.customer_id).balance
        loyalty = LoyaltyBlock(
            customer_name=name,
            phone_masked=phone,
            tier=None,
            points_earned=0,
            points_burned=0,
            balance=int(balance),
            next_expiry=None,
            stamps=(),
            hint=None,
        )
    items = tuple(
        ReceiptItem(
            sku=line["sku"],
            name=line["name"],
            qty=_qty(line["qty"]),
            unit_price=0,
            subtotal=int(line["amount"]),
            discount=0,
            burn=int(line.get("burn", 0)),
            total=int(line["amount"]),
        )
        for line in result.get("lines", ())
    )
    return ReceiptDocument(
        header=StoreHeader(
            store_id=store.id,
            store_name=store.name,
            lane_id=transaction.lane_id,
            transaction_id=transaction.id,
            created_at=transaction.created_at,
        ),
        items=items,
        discounts=(),
        totals=Totals(
            subtotal=refund.amount,
            discount_total=0,
            points_burned=0,
            burn_value=0,
            total=refund.amount,
        ),
        loyalty=loyalty,
        coupons=(),
        footer=store.footer,
        currency=transaction.currency,
        locale=store.locale,
        timezone=store.timezone,
        refund=RefundBlock(
            refund_id=refund.id,
            created_at=refund.created_at,
            amount=refund.amount,
            full=refund.full,
            points_earn_reversed=refund.points_earn_reversed,
            points_burn_returned=refund.points_burn_returned,
            coupons_cancelled=tuple(_display(c) for c in coupons.get("cancelled", ())),
            coupons_returned=tuple(_display(c) for c in coupons.get("returned", ())),
            kept=int((result.get("kept") or {}).get("total", 0)),
        ),
    )


def _display(code: str) -> str:
    """`ABCD-EFGH-JK2` whether the stored text has hyphens or not."""
    return format_code(code.replace("-", "").upper())
