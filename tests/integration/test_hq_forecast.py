"""Dry run and results on both databases: past sales replayed under a proposed program with each
customer as they were at the time, compared per rule; nothing written; results per rule agree
with the ledger and the coupons table."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.hq.bundle import program_from_json
from pos_loyalty.hq.replay import dry_run
from pos_loyalty.hq.results import results_report
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.rules.compiled import compile_rules
from pos_loyalty.sales.models import SaleTransaction, StoredQuote
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json

FIRST_VISIT = {
    "id": "welcome",
    "kind": "discount",
    "label": "Первая покупка −20%",
    "applies_to": "basket",
    "percent": 20,
    "when": {"first_purchase": True},
}

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def config_extra(tmp_path: Path) -> dict[str, Any]:
    return {**SALE_RULES, "head_office": {"signing_key": str(tmp_path / "hq.key")}}


def _counts(store: Store) -> list[int]:
    with store.uow() as uow:
        return [
            int(uow.session.exec(select(func.count()).select_from(model)).one())
            for model in (SaleTransaction, LedgerEntry, Coupon, StoredQuote)
        ]


def test_dry_run_replays_with_the_customer_as_they_were(client: TestClient, store: Store) -> None:
    ivan = enrol_json(client)
    for _ in range(3):  # Иван buys three times: only the first was a first purchase
        sell_json(
            client, basket_json(line_json(unit_price=10000), customer={"phone": "9161234567"})
        )
    sell_json(client, basket_json(line_json(unit_price=5000)))  # anonymous
    before = _counts(store)

    proposed_json = {**SALE_RULES, "rules": [*SALE_RULES["rules"], FIRST_VISIT]}
    proposed = program_from_json(proposed_json).compile(tz=store.settings.store.tz)
    seen: list[tuple[int, int]] = []
    with store.uow() as uow:
        result = dry_run(
            uow=uow,
            active=store.rules,
            proposed=proposed,
            since=store.now() - timedelta(days=1),
            locale="ru_RU",
            currency="RUB",
            progress=lambda done, total: seen.append((done, total)),
        )
    assert _counts(store) == before  # writes nothing
    assert result.sales == 4 and seen[-1] == (4, 4)
    rules = {r.rule_id: r for r in result.rules}
    welcome = rules["welcome"]
    assert welcome.active.baskets == 0
    assert welcome.proposed.baskets == 1 and welcome.proposed.discount == 2000  # 20 % of 100 ₽
    points_rule = next(r["id"] for r in SALE_RULES["rules"] if r["kind"] == "points")
    assert rules[points_rule].active.baskets == 3  # customers only
    assert rules[points_rule].active.points > 0
    assert rules[points_rule].active.liability(100) == rules[points_rule].active.points * 100
    assert result.proposed_total.discount == result.active_total.discount + 2000
    assert ivan


def test_results_agree_with_the_ledger_and_the_endpoints_answer(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    enrol_json(client)
    for price in (10000, 80000, 3000):
        sell_json(
            client, basket_json(line_json(unit_price=price), customer={"phone": "9161234567"})
        )
    with store.uow() as uow:
        report = results_report(uow=uow, since=store.now() - timedelta(days=1), until=store.now())
        earned = {
            rule_id: int(points)
            for rule_id, points in uow.session.exec(
                select(LedgerEntry.rule_id, func.sum(LedgerEntry.points))
                .where(LedgerEntry.points > 0)
                .group_by(LedgerEntry.rule_id)
            )
        }
        issued = int(uow.session.exec(select(func.count()).select_from(Coupon)).one())
    assert report.sales == 3
    by_rule = {r.rule_id: r for r in report.rules}
    for rule_id, points in earned.items():
        assert by_rule[rule_id].points_issued == points
    assert sum(r.coupons_issued for r in report.rules) == issued >= 1
    assert report.to_csv().splitlines()[0].startswith("rule_id,baskets,discount")

    client.headers["Authorization"] = f"Bearer {new_key(store, Scope.HQ)}"
    answer = client.get("/v1/hq/results", params={"since": "1d"})
    assert answer.status_code == 200 and answer.json()["sales"] == 3
    assert client.get("/v1/hq/results", params={"since": "soon"}).status_code == 422

    from pos_loyalty.hq.signing import create_signing_key

    create_signing_key(tmp_path / "hq.key")
    published = client.post(
        "/v1/hq/bundles",
        json={"program": {**SALE_RULES, "rules": [*SALE_RULES["rules"], FIRST_VISIT]}},
    )
    assert published.status_code == 201, published.text
    forecast = client.post(
        f"/v1/hq/bundles/{published.json()['version']}/dry-run", json={"since": "1d"}
    )
    assert forecast.status_code == 200, forecast.text
    body = forecast.json()
    assert (
        body["sales"] == 3 and body["active_version"] == compile_rules(store.rules.config).version
    )
    welcome = next(r for r in body["rules"] if r["rule_id"] == "welcome")
    assert welcome["proposed"]["baskets"] == 1 and welcome["active"]["baskets"] == 0


def test_a_period_from_a_date_starts_at_midnight_where_head_office_is(
    client: TestClient, store: Store
) -> None:
    """`since=2026-09-01` is 1 September in Moscow, not three hours into it (midnight UTC)."""
    store.clock = lambda: datetime(2026, 9, 1, 1, 0, tzinfo=MOSCOW)  # 31 August, 22:00 UTC
    sell_json(client, basket_json(line_json(unit_price=10000)))
    store.clock = lambda: datetime(2026, 9, 2, 12, 0, tzinfo=MOSCOW)
    client.headers["Authorization"] = f"Bearer {new_key(store, Scope.HQ)}"
    for since, sales in [("2026-09-01", 1), ("2026-09-01T02:00", 0), ("2026-08-31T22:00Z", 1)]:
        answer = client.get("/v1/hq/results", params={"since": since})
        assert answer.status_code == 200 and answer.json()["sales"] == sales, since
