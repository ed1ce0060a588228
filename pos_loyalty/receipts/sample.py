"""A realistic receipt without a database: a basket priced by the real rules engine, a known
customer and two issued coupons. For previews of a printer's layout, the benchmark and tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pos_loyalty.coupons.codes import check_character, coupon_qr
from pos_loyalty.receipts.build import ReceiptInput, receipt_from_input
from pos_loyalty.receipts.document import IssuedCoupon, PointsExpiry, ReceiptDocument
from pos_loyalty.rules import (
    Basket,
    BasketLine,
    CustomerSnapshot,
    RulesConfig,
    compile_rules,
    evaluate,
)
from pos_loyalty.security import StoreSecret
from pos_loyalty.settings import StoreConfig

SAMPLE_STORE = StoreConfig(
    id="msk-001",
    name="Магазин у дома",
    footer="Спасибо за покупку!\nКупоны действуют во всех наших магазинах.",
)
SAMPLE_TIME = datetime(2026, 11, 21, 18, 42, tzinfo=ZoneInfo("Europe/Moscow"))

_PRODUCTS: list[tuple[str, str, str, int, int | Decimal]] = [
    ("4601234567890", "Молоко 3,2% 1 л", "dairy", 8990, 2),
    ("4601234567891", "Кефир 1% 900 г", "dairy", 7490, 1),
    ("2000000001234", "Говядина охлаждённая, вырезка высшего сорта", "meat", 129990,
     Decimal("0.734")),
    ("4601234567892", "Хлеб бородинский нарезной 400 г", "bakery", 5990, 1),
    ("4601234567893", "Кофе молотый арабика 250 г", "coffee", 45990, 1),
    ("4601234567894", "Сыр российский 45% 200 г", "dairy", 23990, 1),
    ("2000000001235", "Яблоки Гренни Смит", "fruit", 18990, Decimal("1.215")),
    ("4601234567895", "Шоколад горький 70% 100 г", "sweets", 12990, 3),
]  # fmt: skip

_RULES = {
    "points": {"expire_days": 365},
    "tiers": [
        {"name": "Серебро", "min_spend": 1_000_000},
        {"name": "Золото", "min_spend": 3_000_000},
    ],
    "rules": [
        {"id": "base-points", "kind": "points", "label": "Баллы за покупку", "earn_percent": 5},
        {
            "id": "dairy-week",
            "kind": "discount",
            "label": "Молочная неделя −10%",
            "percent": 10,
            "when": {"categories": ["dairy"]},
        },
        {
            "id": "coffee-6th-free",
            "kind": "stamps",
            "label": "Каждый 6-й кофе бесплатно",
            "every": 6,
            "when": {"categories": ["coffee"]},
        },
        {
            "id": "spend-700-get-70",
            "kind": "threshold",
            "label": "Купите на 700 ₽ — 70 ₽ на следующую покупку",
            "min_subtotal": 70_000,
            "reward": {"coupon": {"amount_off": 7_000, "valid_days": 14}},
            "hint_within": 15_000,
        },
    ],
}  # fmt: skip


def sample_coupon(
    secret: StoreSecret, body: str, label: str, *, issued_at: datetime = SAMPLE_TIME, **value: int
) -> IssuedCoupon:
    """A coupon with a real check character and a real PLC1 MAC under `secret`."""
    code = body + check_character(body)
    return IssuedCoupon(
        code=code,
        qr_payload=coupon_qr(secret, code),
        label=label,
        amount_off=value.get("amount_off"),
        percent_off=value.get("percent_off"),
        min_subtotal=value.get("min_subtotal", 0),
        skus=(),
        categories=(),
        valid_from=issued_at,
        expires_at=issued_at + timedelta(days=14),
    )


def sample_receipt_input(
    *, lines: int = 8, secret: StoreSecret | None = None, store: StoreConfig = SAMPLE_STORE
) -> ReceiptInput:
    """`lines` basket lines (the products repeat), a customer, points burned and two coupons."""
    secret = secret or StoreSecret(b"sample-secret-for-previews-only!")
    products = [_PRODUCTS[i % len(_PRODUCTS)] for i in range(lines)]
    basket = Basket(
        store_id=store.id,
        lane_id="lane-1",
        lines=tuple(
            BasketLine(sku, name, category, qty, price)
            for sku, name, category, price, qty in products
        ),
        points_to_redeem=150,
    )
    customer = CustomerSnapshot(
        id="c-42", lifetime_spend=1_250_000, points_balance=1_340, stamps={"coffee-6th-free": 2}
    )
    rules = compile_rules(RulesConfig.from_dict(_RULES), tz=store.tz)
    quote = evaluate(
        basket, customer, rules, SAMPLE_TIME, locale=store.locale, currency=store.currency
    )
    sale = quote.to_dict()
    coupons = (
        sample_coupon(
            secret, "7K3M9QXR2T", "Купите на 700 ₽ — 70 ₽ на следующую покупку",
            amount_off=7_000, min_subtotal=70_000,
        ),
        sample_coupon(secret, "4WJ8PD6NHV", "Любимый кофе со скидкой", percent_off=15),
    )  # fmt: skip
    paid = -(-quote.total // 10_000) * 10_000  # rounded up to 100 ₽ in cash
    return ReceiptInput(
        transaction_id="t9f2c41d07a84e5b",
        created_at=SAMPLE_TIME,
        sale=sale,
        lane_id="lane-1",
        customer_name="Иван П.",
        phone_masked="+7 *** ***-45-67",
        coupons=coupons,
        next_expiry=PointsExpiry(points=120, expires_at=SAMPLE_TIME + timedelta(days=30)),
        payment_method="cash",
        paid=paid,
        change=paid - quote.total,
    )


def sample_receipt(
    *, lines: int = 8, secret: StoreSecret | None = None, store: StoreConfig = SAMPLE_STORE
) -> ReceiptDocument:
    """The document of `sample_receipt_input`."""
    data = sample_receipt_input(lines=lines, secret=secret, store=store)
    return receipt_from_input(data, store=store)
