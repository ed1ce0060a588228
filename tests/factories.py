"""Builders for the things tests need over and over: baskets, customers, rules, coupons.

Each builder gives a sensible default and takes keyword overrides, so a test states only what
matters to it. Times are Moscow-local and aware.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pos_loyalty.rules import (
    Basket,
    BasketLine,
    CompiledRules,
    CouponSnapshot,
    CustomerSnapshot,
    PresentedCoupon,
    RulesConfig,
    compile_rules,
)

MOSCOW = ZoneInfo("Europe/Moscow")
# A Monday morning: weekday 1, 09:30 local.
MONDAY_MORNING = datetime(2026, 5, 4, 9, 30, tzinfo=MOSCOW)


def at(text: str) -> datetime:
    """`at("2026-05-04 09:30")` → an aware Moscow time."""
    return datetime.fromisoformat(text).replace(tzinfo=MOSCOW)


# -- baskets -----------------------------------------------------------------------------------


def line(
    sku: str = "4601234567890",
    unit_price: int = 8990,
    qty: int | Decimal | str = 1,
    *,
    category: str = "dairy",
    name: str | None = None,
) -> BasketLine:
    quantity = Decimal(qty) if isinstance(qty, str) else qty
    return BasketLine(sku, name or f"Товар {sku}", category, quantity, unit_price)


def basket(*lines: BasketLine, points_to_redeem: int = 0, store_id: str = "msk-001") -> Basket:
    return Basket(store_id, "lane-1", tuple(lines), points_to_redeem)


# -- customers ---------------------------------------------------------------------------------


def customer(**overrides: Any) -> CustomerSnapshot:
    fields: dict[str, Any] = {"id": "cust-1", "lifetime_spend": 0, "points_balance": 0}
    fields.update(overrides)
    if "segments" in fields:
        fields["segments"] = frozenset(fields["segments"])
    return CustomerSnapshot(**fields)


# -- rules -------------------------------------------------------------------------------------

TIERS = [{"name": "silver", "min_spend": 1_000_000}, {"name": "gold", "min_spend": 3_000_000}]


def discount_rule(rule_id: str = "disc", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": rule_id, "kind": "discount", "label": f"Скидка {rule_id}"}
    rule.update(fields)
    if "percent" not in rule and "amount_off" not in rule:
        rule["percent"] = 10
    return rule


def points_rule(rule_id: str = "bonus", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": rule_id, "kind": "points", "label": f"Бонусы {rule_id}"}
    rule.update(fields)
    if "earn_percent" not in rule and "earn_per" not in rule:
        rule["earn_percent"] = 5
    return rule


def threshold_rule(rule_id: str = "spend-700-get-70", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "kind": "threshold",
        "label": "Купите на 700 ₽ — 70 ₽ на следующую покупку",
        "min_subtotal": 70_000,
        "reward": {"coupon": {"amount_off": 7_000, "valid_days": 14}},
        "hint_within": 15_000,
    }
    rule.update(fields)
    return rule


def stamps_rule(rule_id: str = "coffee-6th-free", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "kind": "stamps",
        "label": "Каждый 6-й кофе бесплатно",
        "every": 6,
        "when": {"categories": ["coffee"]},
    }
    rule.update(fields)
    return rule


def rules_config(*rules: dict[str, Any], tiers: Any = None, **points: Any) -> RulesConfig:
    return RulesConfig.from_dict(
        {"points": points, "tiers": TIERS if tiers is None else tiers, "rules": list(rules)}
    )


def compiled(*rules: dict[str, Any], tiers: Any = None, **points: Any) -> CompiledRules:
    return compile_rules(rules_config(*rules, tiers=tiers, **points), tz=MOSCOW)


# -- coupons -----------------------------------------------------------------------------------


def coupon(code: str = "ABCD-EFGH-JK2", **fields: Any) -> PresentedCoupon:
    values: dict[str, Any] = {
        "code": code,
        "label": "70 ₽ на следующую покупку",
        "amount_off": 7_000,
        "valid_from": at("2026-05-01 00:00"),
        "expires_at": at("2026-05-15 00:00"),
    }
    values.update(fields)
    for key in ("skus", "categories"):
        if key in values:
            values[key] = frozenset(values[key])
    return PresentedCoupon(code, CouponSnapshot(**values))


# -- the sale path over HTTP (evaluate, commit, refund) ------------------------------------------

SALE_RULES: dict[str, Any] = {
    "points": {"point_value_minor": 100, "redeem_max_percent": 100, "expire_days": 365},
    "tiers": TIERS,
    "rules": [
        {"id": "bonus-5", "kind": "points", "label": "Бонусы 5%", "earn_percent": 5},
        {
            "id": "spend-700-get-70",
            "kind": "threshold",
            "label": "Купите на 700 ₽ — 70 ₽ на следующую покупку",
            "min_subtotal": 70000,
            "reward": {"coupon": {"amount_off": 7000, "valid_days": 14}},
            "hint_within": 15000,
        },
        {
            "id": "coffee-6th-free",
            "kind": "stamps",
            "label": "Каждый 6-й кофе бесплатно",
            "every": 6,
            "when": {"categories": ["coffee"]},
        },
    ],
}
"""A store's rules for sale-path tests: 5 % points, a 700 ₽ → 70 ₽ coupon, a coffee stamp card."""


def line_json(
    sku: str = "4601234567890",
    unit_price: int = 8990,
    qty: int | float = 1,
    *,
    category: str = "dairy",
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": name or f"Товар {sku}",
        "category": category,
        "qty": qty,
        "unit_price": unit_price,
    }


def basket_json(
    *lines: dict[str, Any],
    customer: dict[str, str] | None = None,
    coupons: list[str] | None = None,
    points_to_redeem: int = 0,
    lane_id: str = "lane-1",
) -> dict[str, Any]:
    """The body of `POST /v1/baskets/evaluate` (and of a basket commit)."""
    return {
        "store_id": "msk-001",
        "lane_id": lane_id,
        "customer": customer,
        "lines": list(lines) or [line_json()],
        "coupons": coupons or [],
        "points_to_redeem": points_to_redeem,
    }


def enrol_json(client: Any, phone: str = "9161234567", name: str = "Иван Петров") -> str:
    """Enrol through the API; returns the customer id."""
    reply = client.post("/v1/customers", json={"phone": phone, "name": name})
    assert reply.status_code == 201, reply.text
    customer_id: str = reply.json()["id"]
    return customer_id


def evaluate_json(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/v1/baskets/evaluate", json=body)
    assert reply.status_code == 200, reply.text
    quote: dict[str, Any] = reply.json()
    return quote


def commit_json(client: Any, body: dict[str, Any], key: str | None = None) -> Any:
    """POST /v1/transactions with a fresh Idempotency-Key unless one is given; the reply."""
    import uuid

    return client.post(
        "/v1/transactions", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}
    )


def sell_json(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Evaluate and commit a basket; the commit's body."""
    reply = commit_json(client, {"quote_id": evaluate_json(client, body)["quote_id"]})
    assert reply.status_code == 201, reply.text
    sale: dict[str, Any] = reply.json()
    return sale


def refund_json(
    client: Any, transaction_id: str, *lines: tuple[str, int | float]
) -> dict[str, Any]:
    """Refund (sku, qty) lines of a sale, or all of it without lines; the refund's body."""
    import uuid

    body = {"lines": [{"sku": sku, "qty": qty} for sku, qty in lines]} if lines else {}
    reply = client.post(
        f"/v1/transactions/{transaction_id}/refund",
        json=body,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert reply.status_code == 200, reply.text
    refund: dict[str, Any] = reply.json()
    return refund


# -- personal offers: rules and crafted purchase histories ---------------------------------------


def personal_rule(rule_id: str, trigger: str, **fields: Any) -> dict[str, Any]:
    """A `kind = "personal"` rule; 10 % off unless the test gives a value."""
    rule: dict[str, Any] = {
        "id": rule_id,
        "kind": "personal",
        "label": f"Персональное предложение {rule_id}",
        "trigger": trigger,
    }
    rule.update(fields)
    if "percent_off" not in rule and "amount_off" not in rule:
        rule["percent_off"] = 10
    return rule


def purchase_history(
    *purchases: tuple[str, str, str, int],
    since: str = "2025-01-01",
    last_purchase_at: datetime | None = None,
    active_coupons: tuple[str, ...] = (),
    last_issued: dict[str, datetime] | None = None,
    names: dict[str, str] | None = None,
) -> Any:
    """A `CustomerHistory` from (day "YYYY-MM-DD", sku, category, amount) purchases, aggregated by
    day as storage does; one sale per distinct day; `last_purchase_at` defaults to the last day."""
    from datetime import date as date_

    from pos_loyalty.rules import CustomerHistory, ItemHistory

    sku_days: dict[str, dict[date_, list[int]]] = {}
    category_days: dict[str, dict[date_, list[int]]] = {}
    sku_category: dict[str, str] = {}
    spend_by_day: dict[date_, int] = {}
    for day_text, sku, category, amount in purchases:
        day = date_.fromisoformat(day_text)
        sku_category[sku] = category
        for table, key in ((sku_days, sku), (category_days, category)):
            entry = table.setdefault(key, {}).setdefault(day, [0, 0])
            entry[0] += amount
            entry[1] += 1000
        spend_by_day[day] = spend_by_day.get(day, 0) + amount

    def items(table: dict[str, dict[date_, list[int]]], is_sku: bool) -> dict[str, ItemHistory]:
        out = {}
        for key, days in table.items():
            name = (names or {}).get(key, f"Товар {key}") if is_sku else key
            out[key] = ItemHistory(
                key=key,
                name=name,
                category=sku_category[key] if is_sku else key,
                days=tuple(sorted(days)),
                amounts=tuple(days[d][0] for d in sorted(days)),
            )
        return out

    if last_purchase_at is None and spend_by_day:
        last_purchase_at = datetime.combine(max(spend_by_day), datetime.min.time(), MOSCOW)
    return CustomerHistory(
        since=date_.fromisoformat(since),
        last_purchase_at=last_purchase_at,
        visits=len(spend_by_day),
        spend=sum(spend_by_day.values()),
        skus=items(sku_days, True),
        categories=items(category_days, False),
        active_coupons=frozenset(active_coupons),
        last_issued=dict(last_issued or {}),
    )
