"""The points ledger: lots expire oldest first, balances are sums, the cache is proven right."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from pos_loyalty.cli.app import app as cli
from pos_loyalty.customers.models import Customer
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.ledger.service import compute_lots, expire_points, verify_ledger
from pos_loyalty.sales.housekeeping import Housekeeping, run_housekeeping
from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json
from tests.serving import SAFETY_S


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {**SALE_RULES, "points": {**SALE_RULES["points"], "expire_days": 30}}


def entry(entry_id: int, points: int, days: int | None = None, lot: int | None = None) -> Any:
    from datetime import UTC, datetime

    base = datetime(2026, 1, 1, tzinfo=UTC)
    return LedgerEntry(
        id=entry_id,
        customer_id="c",
        kind="earn" if points > 0 else "burn",
        points=points,
        expires_at=base + timedelta(days=days) if days is not None else None,
        lot_id=lot,
    )


def test_lots_are_drawn_oldest_expiry_first_and_pinned_debits_hit_their_lot() -> None:
    state = compute_lots([entry(1, 100, 30), entry(2, 50, 10), entry(3, 80), entry(4, -70)])
    assert [(lot.entry_id, lot.remaining) for lot in state.lots] == [(2, 0), (1, 80), (3, 80)]
    pinned = compute_lots([entry(1, 100, 30), entry(2, 50, 10), entry(4, -30, lot=1)])
    assert [(lot.entry_id, lot.remaining) for lot in pinned.lots] == [(2, 50), (1, 70)]
    debt = compute_lots([entry(1, 10, 5), entry(2, -25)])
    assert debt.debt == 15 and debt.balance == -15


def test_points_expire_by_lot_and_the_profile_shows_the_nearest_expiry(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    token = {"id": customer_id}
    start = store.now()
    sell_json(client, basket_json(line_json(unit_price=20000), customer=token))  # +10, day 0
    store.clock = lambda: start + timedelta(days=20)
    sell_json(client, basket_json(line_json(unit_price=40000), customer=token))  # +20, day 20
    sell_json(
        client,
        basket_json(line_json(unit_price=10000), customer=token, points_to_redeem=4),
    )  # −4 from the oldest lot, +4 on 96,00 ₽
    profile = client.get(f"/v1/customers/{customer_id}").json()
    assert profile["balance"] == 30
    assert profile["points_expiring"]["points"] == 6  # what is left of the first lot
    assert profile["lifetime_spend"] == 20000 + 40000 + 9600
    store.clock = lambda: start + timedelta(days=31)
    report = run_housekeeping(store)
    assert (report.customers, report.lots_expired, report.points_expired) == (1, 1, 6)
    assert run_housekeeping(store).lots_expired == 0  # never twice
    profile = client.get(f"/v1/customers/{customer_id}").json()
    assert profile["balance"] == 24
    # both lots left were earned on day 20: all 24 points expire on that nearest date
    assert profile["points_expiring"]["points"] == 24
    page = client.get(f"/v1/customers/{customer_id}/ledger?limit=2").json()
    assert [e["kind"] for e in page["entries"]] == ["expire", "earn"]
    assert page["balance"] == 24 and page["next_cursor"] is not None
    rest = client.get(f"/v1/customers/{customer_id}/ledger?before={page['next_cursor']}").json()
    assert [e["kind"] for e in rest["entries"]] == ["burn", "earn", "earn"]
    assert rest["next_cursor"] is None
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []


def test_ledger_verify_command_proves_cache_equals_sum(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    customer_id = enrol_json(client)
    sell_json(client, basket_json(line_json(unit_price=20000), customer={"id": customer_id}))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "М"\ndatabase_url = "{store.settings.database_url}"\n'
        f'secret_file = "{store.settings.secret_path}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    ok = runner.invoke(cli, ["ledger", "verify", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "1 customers" in ok.output
    with store.uow(write=True) as uow:
        uow.session.execute(update(Customer).values(points_balance=999))
        uow.commit()
    broken = runner.invoke(cli, ["ledger", "verify", "--config", str(config)])
    assert broken.exit_code == 1
    assert "cached balance 999 but the entries sum to 10" in broken.output
    expire = runner.invoke(cli, ["points", "expire", "--config", str(config)])
    assert expire.exit_code == 0 and "expired 0 points" in expire.output


def test_expiry_reaches_every_customer_however_many_are_due(
    client: TestClient, store: Store
) -> None:
    """Due customers are found a batch at a time, and one run goes on until none is left."""
    start = store.now()
    customers = [enrol_json(client, phone=f"916000000{n}") for n in range(5)]
    for customer_id in customers:
        sell_json(client, basket_json(line_json(unit_price=20000), customer={"id": customer_id}))
    report = expire_points(
        new_uow=lambda: store.uow(write=True), now=start + timedelta(days=31), batch=2
    )
    assert (report.customers, report.lots, report.points) == (5, 5, 50)
    for customer_id in customers:
        assert client.get(f"/v1/customers/{customer_id}").json()["balance"] == 0


def test_serve_housekeeping_expires_points_in_the_background(
    client: TestClient, store: Store
) -> None:
    """What `serve` runs: a pass at start, then every interval, until the server stops."""
    customer_id = enrol_json(client)
    start = store.now()
    sell_json(client, basket_json(line_json(unit_price=20000), customer={"id": customer_id}))
    store.clock = lambda: start + timedelta(days=31)
    with Housekeeping(store, interval_s=0.05):
        deadline = time.monotonic() + SAFETY_S
        while client.get(f"/v1/customers/{customer_id}").json()["balance"] != 0:
            assert time.monotonic() < deadline, "housekeeping never expired the lot"
            time.sleep(0.05)
    kinds = [e["kind"] for e in client.get(f"/v1/customers/{customer_id}/ledger").json()["entries"]]
    assert kinds == ["expire", "earn"]  # once, however many passes ran


def test_profile_shows_balance_nearest_expiry_tier_and_lifetime_spend(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    new = client.get(f"/v1/customers/{customer_id}").json()
    assert (new["balance"], new["lifetime_spend"], new["points_expiring"]) == (0, 0, None)
    assert new["tier"] == {"name": None, "next": "silver", "missing": 1_000_000}
    start = store.now()
    sell_json(
        client, basket_json(line_json(unit_price=1_000_000), customer={"id": customer_id})
    )  # 10 000,00 ₽: silver, +500 points expiring in 30 days
    profile = client.get(f"/v1/customers/{customer_id}").json()
    assert profile["balance"] == 500 and profile["lifetime_spend"] == 1_000_000
    assert profile["tier"] == {"name": "silver", "next": "gold", "missing": 2_000_000}
    assert profile["points_expiring"]["points"] == 500
    expires = datetime.fromisoformat(profile["points_expiring"]["at"])
    assert abs(expires - (start + timedelta(days=30))) < timedelta(minutes=1)


def test_the_database_refuses_to_edit_or_delete_a_ledger_entry(
    client: TestClient, store: Store
) -> None:
    """Append-only is enforced below the code too: history changes only by reversing entries."""
    from sqlalchemy import delete, select
    from sqlalchemy.exc import DBAPIError

    customer_id = enrol_json(client)
    sell_json(client, basket_json(line_json(unit_price=20000), customer={"id": customer_id}))
    for statement in (
        update(LedgerEntry).where(LedgerEntry.customer_id == customer_id).values(points=1000),
        delete(LedgerEntry).where(LedgerEntry.customer_id == customer_id),
    ):
        with pytest.raises(DBAPIError, match="append-only"), store.uow(write=True) as uow:
            uow.session.execute(statement)
            uow.commit()
    with store.uow() as uow:
        points = uow.session.execute(
            select(LedgerEntry.points).where(LedgerEntry.customer_id == customer_id)
        ).scalars()
        assert list(points) == [10]  # the sale's earn, as it was written
        assert verify_ledger(uow=uow)[1] == []
