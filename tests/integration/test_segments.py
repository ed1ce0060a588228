"""RFM segments on both databases, `when.segments` after a run, personal coupons through the sale
path, the summary API and the segments CLI."""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import insert, select
from sqlalchemy import text as sa_text
from typer.testing import CliRunner

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.cli.app import app as cli
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.models import Customer
from pos_loyalty.sales.models import SaleTransaction
from pos_loyalty.segments.models import CustomerSegment, SegmentsConfig
from pos_loyalty.segments.service import compute_rfm, contact_list
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {
        "store": {"category_names": {"pet_food": "Корм для животных"}},
        "points": SALE_RULES["points"],
        "tiers": SALE_RULES["tiers"],
        "rules": [
            {
                "id": "champions-5",
                "kind": "discount",
                "label": "Чемпионам −5%",
                "percent": 5,
                "when": {"segments": ["champions"]},
            },
            {
                "id": "fav-15",
                "kind": "personal",
                "trigger": "favourite",
                "label": "−15% на любимое",
                "percent_off": 15,
                "lookback_days": 60,
            },
        ],
    }


# -- writing histories straight into the tables ---------------------------------------------------


def add_customers(store: Store, rows: list[dict[str, Any]]) -> None:
    table: Any = Customer.__table__  # type: ignore[attr-defined]
    with store.uow(write=True) as uow:
        uow.session.execute(
            insert(table),
            [
                {
                    "id": row["id"],
                    "name": row.get("name", "Иван Петров"),
                    "phone_hash": uuid.uuid4().hex,
                    "phone_masked": "+7 *** ***-45-67",
                    "consents": row.get("consents", {}),
                    "lifetime_spend": 0,
                    "points_balance": 0,
                    "created_at": NOW - timedelta(days=400),
                }
                for row in rows
            ],
        )
        uow.commit()


def sale_row(customer_id: str, at: datetime, total: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "store_id": "msk-001",
        "lane_id": "lane-1",
        "customer_id": customer_id,
        "quote_id": None,
        "rules_version": "test",
        "currency": "RUB",
        "subtotal": total,
        "discount_total": 0,
        "burn_value": 0,
        "total": total,
        "points_earned": 0,
        "points_burned": 0,
        "payment_method": None,
        "paid": None,
        "change": 0,
        "status": extra.get("status", "completed"),
        "refunded_amount": extra.get("refunded_amount", 0),
        "stamps": {},
        "result": {},
        "created_at": at,
    }


def add_sales(store: Store, rows: list[dict[str, Any]]) -> None:
    table: Any = SaleTransaction.__table__  # type: ignore[attr-defined]
    with store.uow(write=True) as uow:
        uow.session.execute(insert(table), rows)
        uow.commit()


def segments_by_customer(store: Store) -> dict[str, tuple[str, int, int, int]]:
    with store.uow() as uow:
        rows = uow.session.execute(
            select(
                CustomerSegment.customer_id,  # type: ignore[arg-type]
                CustomerSegment.segment,  # type: ignore[arg-type]
                CustomerSegment.r_score,  # type: ignore[arg-type]
                CustomerSegment.f_score,  # type: ignore[arg-type]
                CustomerSegment.m_score,  # type: ignore[arg-type]
            )
        ).all()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def run_rfm(store: Store, now: datetime = NOW) -> Any:
    with store.uow(write=True) as uow:
        return compute_rfm(uow=uow, config=store.settings.segments, now=now)


# -- a crafted set: every named segment, scores worked out by hand ------------------------------

# id: (days since last purchase, purchases, amount each, days since first purchase)
CRAFTED = {
    "c01": (200, 2, 1_000, 250),  # no purchase for 200 days → lapsed
    "c02": (100, 8, 3_000, 170),  # r=1 f=4 → at_risk
    "c03": (90, 7, 3_000, 160),  # r=2 f=3 → at_risk
    "c04": (80, 1, 500, 80),  # r=2 f=1 → hibernating
    "c05": (30, 2, 800, 60),  # r=3 f=2 → potential
    "c06": (25, 9, 900, 200),  # r=3 f=4 → loyal
    "c07": (10, 1, 2_000, 10),  # first purchase 10 days ago → new
    "c08": (8, 3, 700, 90),  # r=4 f=3 → potential
    "c09": (2, 12, 5_000, 300),  # r=5 f=5 m=5 → champions
    "c10": (1, 10, 6_000, 300),  # r=5 f=5 m=5 → champions
}
EXPECTED = {
    "c01": "lapsed",
    "c02": "at_risk",
    "c03": "at_risk",
    "c04": "hibernating",
    "c05": "potential",
    "c06": "loyal",
    "c07": "new",
    "c08": "potential",
    "c09": "champions",
    "c10": "champions",
}


def add_crafted(store: Store, now: datetime = NOW) -> None:
    add_customers(store, [{"id": cid} for cid in [*CRAFTED, "c11"]])  # c11 never bought
    sales = []
    for cid, (last, count, amount, first) in CRAFTED.items():
        for k in range(count):
            days_ago = first - (first - last) * k / max(count - 1, 1) if count > 1 else last
            sales.append(sale_row(cid, now - timedelta(days=days_ago, hours=1), amount))
    add_sales(store, sales)


def test_crafted_customers_get_the_expected_segments(store: Store) -> None:
    add_crafted(store)
    summary = run_rfm(store)
    found = segments_by_customer(store)
    assert {cid: seg for cid, (seg, *_) in found.items()} == EXPECTED
    assert found["c09"][1:] == (5, 5, 5) and found["c04"][1:] == (2, 1, 1)
    counts = {s.name: s.customers for s in summary.segments}
    assert counts == {
        "lapsed": 1,
        "new": 1,
        "champions": 2,
        "loyal": 1,
        "at_risk": 2,
        "potential": 2,
        "hibernating": 1,
    }
    assert (summary.scored, summary.customers) == (10, 11)
    assert summary.computed_at == NOW


def test_a_rerun_replaces_the_previous_scores(store: Store) -> None:
    add_crafted(store)
    run_rfm(store)
    later = NOW + timedelta(days=100)  # c06's last purchase is now 125 days old, c07's 110
    summary = run_rfm(store, later)
    found = segments_by_customer(store)
    assert len(found) == 10 and summary.computed_at == later
    assert found["c07"][0] != "new"


# -- a generated history checked against a reference implementation ----------------------------


@dataclass
class Generated:
    sales: list[dict[str, Any]]
    consents: dict[str, dict[str, bool]]


def generate(store: Store, customers: int = 500, seed: int = 7) -> Generated:
    rng = random.Random(seed)
    consents: dict[str, dict[str, bool]] = {}
    people = []
    sales: list[dict[str, Any]] = []
    for i in range(customers):
        cid = f"g{i:04d}"
        consent = rng.choice([{}, {"sms": True}, {"sms": False}, {"marketing": True}])
        consents[cid] = consent
        people.append({"id": cid, "consents": consent, "name": f"Покупатель{i} Тестов"})
        purchases = rng.choice([0, 1, 1, 2, 3, 5, 8, 13, 20])
        first = rng.randint(1, 500)
        for _ in range(purchases):
            at = NOW - timedelta(days=rng.randint(0, first), seconds=rng.randint(1, 86_000))
            status = "refunded" if rng.random() < 0.03 else "completed"
            total = rng.randint(1, 500) * 1000 + rng.randint(0, 99)
            refunded = total // 2 if status == "completed" and rng.random() < 0.05 else 0
            sales.append(sale_row(cid, at, total, status=status, refunded_amount=refunded))
    add_customers(store, people)
    add_sales(store, sales)
    return Generated(sales, consents)


@dataclass
class Bought:
    """One customer's sales as RFM sees them: first and last purchase, and within the window
    how many sales and how much money."""

    first: datetime
    last: datetime
    frequency: int = 0
    monetary: int = 0


def aggregate(sales: list[dict[str, Any]], config: SegmentsConfig) -> dict[str, Bought]:
    window_start = NOW - timedelta(days=config.window_days)
    agg: dict[str, Bought] = {}
    for sale in sales:
        if sale["status"] == "refunded" or sale["created_at"] > NOW:
            continue
        at = sale["created_at"]
        a = agg.setdefault(sale["customer_id"], Bought(at, at))
        a.first, a.last = min(a.first, at), max(a.last, at)
        if at >= window_start:
            a.frequency += 1
            a.monetary += sale["total"] - sale["refunded_amount"]
    return agg


def reference_scores(
    agg: dict[str, Bought], config: SegmentsConfig
) -> dict[str, tuple[str, int, int, int]]:
    """RFM as the SQL should compute it, in plain Python (ntile: the first N % 5 buckets get
    one more row): customer → (segment, r, f, m)."""

    def ntile(key: Any) -> dict[str, int]:
        ordered = sorted(agg, key=key)
        n = len(ordered)
        sizes = [n // 5 + (1 if b < n % 5 else 0) for b in range(5)]
        out, position = {}, 0
        for bucket, size in enumerate(sizes, start=1):
            for cid in ordered[position : position + size]:
                out[cid] = bucket
            position += size
        return out

    r = ntile(lambda c: (agg[c].last, c))
    f = ntile(lambda c: (agg[c].frequency, agg[c].monetary, c))
    m = ntile(lambda c: (agg[c].monetary, agg[c].frequency, c))
    scores = {}
    for cid, a in agg.items():
        for d in config.definitions:
            ok = (
                (d.r is None or d.r[0] <= r[cid] <= d.r[1])
                and (d.f is None or d.f[0] <= f[cid] <= d.f[1])
                and (d.m is None or d.m[0] <= m[cid] <= d.m[1])
                and (
                    d.min_days_since_last is None
                    or a.last <= NOW - timedelta(days=d.min_days_since_last)
                )
                and (
                    d.max_days_since_first is None
                    or a.first >= NOW - timedelta(days=d.max_days_since_first)
                )
            )
            if ok:
                scores[cid] = (d.name, r[cid], f[cid], m[cid])
                break
    return scores


def reference_segments(sales: list[dict[str, Any]], config: SegmentsConfig) -> dict[str, str]:
    return {cid: s[0] for cid, s in reference_scores(aggregate(sales, config), config).items()}


def test_rfm_on_a_generated_history_matches_the_reference(store: Store) -> None:
    data = generate(store)
    summary = run_rfm(store)
    config = store.settings.segments
    expected = reference_scores(aggregate(data.sales, config), config)
    found = segments_by_customer(store)
    assert found == expected
    assert summary.scored == len(expected) and summary.customers == 500
    assert sum(s.customers for s in summary.segments) == summary.scored
    assert {s.name for s in summary.segments if s.customers} >= {"lapsed", "champions", "new"}
    # quintiles: every score 1..5 holds a fifth of the customers (±1)
    for position in (1, 2, 3):
        sizes = [sum(1 for v in found.values() if v[position] == q) for q in range(1, 6)]
        assert max(sizes) - min(sizes) <= 1


# -- the size the issue names: 100,000 customers, 1,000,000 transactions ------------------------

BIG_CUSTOMERS, BIG_SALES = 100_000, 1_000_000
BIG_SPAN_S = 730 * 86_400  # two years of history


def big_sale(i: int) -> tuple[int, int, int, str, int]:
    """Sale number i (1-based) as (customer, seconds before NOW, total, status, refunded), by
    integer formulas the database evaluates identically (see `BIG_SALES_SQL`): customers are
    skewed (a product of two uniforms), so a few buy very often and many rarely or never."""
    a = i * 2654435761 % 1000003
    b = (i * 40503 + 12345) % 1000033
    customer = (a % 100_000) * (b % 100_000) // 100_000
    total = 5000 + (a * 31 + i) % 495_000
    refunded = i % 37 == 0
    partly = total // 2 if i % 53 == 0 and not refunded else 0
    return (
        customer,
        (i * 104729 + b) % BIG_SPAN_S,
        total,
        "refunded" if refunded else "completed",
        partly,
    )


def big_history_sql(dialect: str) -> tuple[str, str]:
    """INSERT … SELECT statements that write the generated customers and sales in the database
    itself (a recursive CTE on SQLite, generate_series on PostgreSQL): seconds, not minutes."""
    if dialect == "sqlite":
        numbers = (
            "WITH RECURSIVE seq(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM seq"
            " WHERE i < {last}) "
        )
        padded = "substr('00000' || {n}, -6, 6)"
        at = "strftime('%Y-%m-%d %H:%M:%S', :now_epoch - {s}, 'unixepoch') || '.000000'"
        customers_from, sales_from = "seq", "seq"
        customers_with = numbers.format(first=0, last=":customers - 1")
        sales_with = numbers.format(first=1, last=":sales")
    else:
        padded = "lpad(CAST({n} AS text), 6, '0')"
        at = "CAST(:now AS timestamptz) - make_interval(secs => {s})"
        customers_from = "generate_series(0, :customers - 1) AS seq(i)"
        sales_from = "generate_series(1, :sales) AS seq(i)"
        customers_with = sales_with = ""
    customers = (
        "INSERT INTO customers (id, name, phone_hash, phone_masked, consents, lifetime_spend,"
        f" points_balance, created_at) {customers_with}"
        f"SELECT 'g' || {padded.format(n='i')}, 'Иван Петров', 'h' || i, '+7 *** ***-45-67',"
        f" '{{}}', 0, 0, {at.format(s=800 * 86_400)} FROM {customers_from}"
    )
    formulas = (
        "SELECT i, (a % 100000) * (b % 100000) / 100000 AS customer,"
        f" (i * 104729 + b) % {BIG_SPAN_S} AS secs, 5000 + (a * 31 + i) % 495000 AS total"
        " FROM (SELECT i, i * 2654435761 % 1000003 AS a, (i * 40503 + 12345) % 1000033 AS b"
        f" FROM (SELECT CAST(i AS bigint) AS i FROM {sales_from}) AS n) AS x"
    )
    sales = (
        "INSERT INTO transactions (id, store_id, lane_id, customer_id, rules_version, currency,"
        " subtotal, discount_total, burn_value, total, points_earned, points_burned, change,"
        f" status, refunded_amount, stamps, result, created_at) {sales_with}"
        f"SELECT 't' || i, 'msk-001', 'lane-1', 'g' || {padded.format(n='customer')}, 'gen',"
        " 'RUB', total, 0, 0, total, 0, 0, 0,"
        " CASE WHEN i % 37 = 0 THEN 'refunded' ELSE 'completed' END,"
        " CASE WHEN i % 53 = 0 AND i % 37 <> 0 THEN total / 2 ELSE 0 END, '{}', '{}',"
        f" {at.format(s='secs')} FROM ({formulas}) AS y"
    )
    return customers, sales


def big_reference(config: SegmentsConfig) -> dict[str, Bought]:
    """The generated sales aggregated in Python from the same formulas, not read back."""
    window_s = config.window_days * 86_400
    seen: dict[int, list[int]] = {}  # customer → [newest s, oldest s, frequency, monetary]
    for i in range(1, BIG_SALES + 1):
        customer, ago, total, status, refunded = big_sale(i)
        if status == "refunded":
            continue
        a = seen.get(customer)
        if a is None:
            a = seen[customer] = [ago, ago, 0, 0]
        elif ago < a[0]:
            a[0] = ago
        elif ago > a[1]:
            a[1] = ago
        if ago <= window_s:
            a[2] += 1
            a[3] += total - refunded
    return {
        f"g{c:06d}": Bought(
            first=NOW - timedelta(seconds=a[1]),
            last=NOW - timedelta(seconds=a[0]),
            frequency=a[2],
            monetary=a[3],
        )
        for c, a in seen.items()
    }


@pytest.mark.slow
def test_rfm_on_100_000_customers_and_1_000_000_transactions(store: Store) -> None:
    """The issue's size on both databases (timings are bench/rfm.py's business): every one of
    the 100,000 customers' scores and segment equal the reference's."""
    customers_sql, sales_sql = big_history_sql(store.engine.dialect.name)
    params = {
        "customers": BIG_CUSTOMERS,
        "sales": BIG_SALES,
        "now": NOW,
        "now_epoch": int(NOW.timestamp()),
    }
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB for the index builds
        conn.execute(sa_text(customers_sql), params)
        conn.execute(sa_text(sales_sql), params)
        loaded = conn.execute(sa_text("SELECT count(*) FROM transactions")).scalar_one()
    assert loaded == BIG_SALES

    summary = run_rfm(store)
    config = store.settings.segments
    expected = reference_scores(big_reference(config), config)
    found = segments_by_customer(store)
    assert summary.customers == BIG_CUSTOMERS and summary.scored == len(expected) > 80_000
    mismatched = [
        (cid, found.get(cid), want) for cid, want in expected.items() if found.get(cid) != want
    ]
    assert mismatched[:5] == [] and len(found) == len(expected)
    counts = {s.name: s.customers for s in summary.segments}
    assert sum(counts.values()) == summary.scored and all(counts.values()), counts
    for position in (1, 2, 3):  # each score 1..5 holds a fifth of the customers (±1)
        sizes = [sum(1 for v in found.values() if v[position] == q) for q in range(1, 6)]
        assert max(sizes) - min(sizes) <= 1


def test_export_lists_only_consenting_customers_of_the_segment(store: Store) -> None:
    data = generate(store)
    run_rfm(store)
    expected = reference_segments(data.sales, store.settings.segments)
    lapsed = {cid for cid, seg in expected.items() if seg == "lapsed"}
    consenting = {
        cid for cid in lapsed if any(data.consents[cid].get(c) for c in ("sms", "marketing"))
    }
    with store.uow() as uow:
        listed = contact_list(
            session=uow.session,
            config=store.settings.segments,
            segment="lapsed",
            now=NOW,
            tz=store.settings.store.tz,
        )
    assert {c.customer_id for c in listed.contacts} == consenting
    assert listed.without_consent == len(lapsed - consenting)
    assert all(c.days_since_last >= 180 and c.phone == "+7 *** ***-45-67" for c in listed.contacts)
    assert all(c.name.endswith("Т.") for c in listed.contacts)  # "Покупатель7 Т."


# -- rules see the segments; personal coupons through the sale path ------------------------------


def test_when_segments_rule_applies_after_rfm(store: Store, client: TestClient) -> None:
    add_crafted(store)
    body = basket_json(line_json(unit_price=100_000), customer={"id": "c09"})
    assert evaluate_json(client, body)["discount_total"] == 0
    run_rfm(store)
    quote = evaluate_json(client, body)
    assert [a["rule_id"] for a in quote["applied"]] == ["champions-5"]
    assert quote["discount_total"] == 5_000
    other = evaluate_json(
        client, basket_json(line_json(unit_price=100_000), customer={"id": "c04"})
    )
    assert other["discount_total"] == 0


def test_favourite_coupon_is_issued_scoped_and_redeemed_on_its_goods(
    store: Store, client: TestClient
) -> None:
    customer = {"id": enrol_json(client)}
    food = line_json("cat-food", 100_000, category="pet_food", name="Корм для кошек")
    milk = line_json("milk", 10_000, category="dairy", name="Молоко")
    start = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    for day in (0, 7, 14):
        store.clock = lambda day=day: start + timedelta(days=day)
        sale = sell_json(client, basket_json(food, milk, customer=customer))
        assert sale["coupons_issued"] == []  # not a favourite yet: fewer than 3 days
    store.clock = lambda: start + timedelta(days=20)
    sale = sell_json(client, basket_json(milk, customer=customer))
    (issued,) = sale["coupons_issued"]
    assert issued["percent_off"] == 15 and issued["rule_id"] == "fav-15"
    with store.uow() as uow:
        row = uow.session.get(Coupon, issued["code"].replace("-", ""))
        assert row is not None and row.categories == ["pet_food"] and row.skus == []
    # one active coupon per rule: the next sale says why there is no second one
    reply = client.post(
        "/v1/baskets/evaluate?explain=true", json=basket_json(milk, customer=customer)
    )
    reasons = {n["rule_id"]: n["code"] for n in reply.json()["not_applied"]}
    assert reasons["fav-15"] == "coupon_active"
    # the receipt names the category as the store calls it, not by its code
    receipt = client.get(f"/v1/receipts/{sale['transaction_id']}.txt").text
    assert "На категории: Корм для животных" in receipt and "pet_food" not in receipt
    document = client.get(f"/v1/receipts/{sale['transaction_id']}").json()
    assert document["coupons"][0]["categories"] == ["pet_food"]
    assert document["coupons"][0]["category_names"] == ["Корм для животных"]
    # presented, it takes 15 % off the pet food only
    quote = evaluate_json(
        client, {**basket_json(food, milk, customer=customer), "coupons": [issued["code"]]}
    )
    assert quote["discount_total"] == 15_000
    by_sku = {ln["sku"]: ln["discount"] for ln in quote["lines"]}
    assert by_sku == {"cat-food": 15_000, "milk": 0}


def test_two_quotes_priced_side_by_side_issue_one_personal_coupon(
    store: Store, client: TestClient
) -> None:
    """Both quotes offer the favourite coupon (neither sale was committed yet); the commit checks
    again under the customer's lock, so the second sale issues none and says so."""
    customer = {"id": enrol_json(client)}
    food = line_json("cat-food", 100_000, category="pet_food", name="Корм для кошек")
    start = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    for day in (0, 7, 14):
        store.clock = lambda day=day: start + timedelta(days=day)
        sell_json(client, basket_json(food, customer=customer))
    store.clock = lambda: start + timedelta(days=20)
    first = evaluate_json(client, basket_json(food, customer=customer))
    second = evaluate_json(client, basket_json(food, customer=customer, lane_id="lane-2"))
    for quote in (first, second):
        assert [c["rule_id"] for c in quote["coupons"]["to_issue"]] == ["fav-15"]
    one = commit_json(client, {"quote_id": first["quote_id"]}).json()
    other = commit_json(client, {"quote_id": second["quote_id"]}).json()
    assert [c["rule_id"] for c in one["coupons_issued"]] == ["fav-15"]
    assert other["coupons_issued"] == [] and other["coupons"]["to_issue"] == []
    with store.uow() as uow:
        rows = uow.session.execute(select(Coupon.code).where(Coupon.rule_id == "fav-15")).all()  # type: ignore[arg-type]
        codes = [row[0] for row in rows]
    assert codes == [one["coupons_issued"][0]["code"].replace("-", "")]


def test_segments_api_summary_for_head_office(store: Store, anon_client: TestClient) -> None:
    anon_client.headers["Authorization"] = f"Bearer {new_key(store, Scope.HQ)}"
    empty = anon_client.get("/v1/segments").json()
    assert empty["computed_at"] is None and empty["scored"] == 0
    add_crafted(store)
    run_rfm(store)
    reply = anon_client.get("/v1/segments")
    assert reply.status_code == 200
    body = reply.json()
    assert datetime.fromisoformat(body["computed_at"]) == NOW
    assert (body["customers"], body["scored"]) == (11, 10)
    counts = {s["name"]: s["customers"] for s in body["segments"]}
    assert counts["champions"] == 2 and counts["lapsed"] == 1
    assert [s["name"] for s in body["segments"]][:3] == ["lapsed", "new", "champions"]
    champions = next(s for s in body["segments"] if s["name"] == "champions")
    assert champions["share"] == 0.2 and champions["avg_monetary"] == 60_000
    anon_client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
    assert anon_client.get("/v1/segments").status_code == 403


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_rfm_writes_csv_and_chart_and_exports_contacts(store: Store, tmp_path: Path) -> None:
    add_crafted(store, datetime.now(UTC))  # the command runs at the real time
    with store.uow(write=True) as uow:
        c01 = uow.session.get(Customer, "c01")
        assert c01 is not None
        c01.consents = {"sms": True}
        c01.name = "Анна Смирнова"
        uow.session.add(c01)
        uow.commit()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин"\n'
        f'database_url = "{store.settings.database_url}"\n'
        f'secret_file = "{store.settings.secret_path}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    scores, chart = tmp_path / "rfm.csv", tmp_path / "rfm.png"
    result = runner.invoke(
        cli, ["segments", "rfm", "-c", str(config), "--csv", str(scores), "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "champions" in result.output and "Чемпионы" in result.output
    assert "+03:00)" in result.output  # the run's time in the store's zone (Europe/Moscow)
    with scores.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["customer_id"]: r["segment"] for r in rows} == EXPECTED
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width >= 600
    contacts = tmp_path / "lapsed.csv"
    result = runner.invoke(
        cli,
        ["segments", "export", "--segment", "lapsed", "-c", str(config), "--csv", str(contacts)],
    )
    assert result.exit_code == 0, result.output
    with contacts.open(encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["customer_id"], row["name"], row["phone"], row["channels"]) == (
        "c01",
        "Анна С.",
        "+7 *** ***-45-67",
        "sms",
    )
    result = runner.invoke(cli, ["segments", "export", "--segment", "vip", "-c", str(config)])
    assert result.exit_code == 2 and "unknown segment" in result.output
