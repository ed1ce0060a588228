"""Committing sales: one database transaction, exactly once per Idempotency-Key, both databases."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from select import select as wait_readable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.ledger.service import adjust_points, verify_ledger
from pos_loyalty.sales.commit import commit_job
from pos_loyalty.sales.housekeeping import run_housekeeping
from pos_loyalty.sales.idempotency import IDEMPOTENCY_RETENTION, Outcome, run_idempotent
from pos_loyalty.sales.models import (
    IdempotencyRecord,
    ReceiptOutbox,
    SaleTransaction,
    StampCounter,
)
from pos_loyalty.security import hash_api_key
from pos_loyalty.storage.engine import SQLITE_BUSY_TIMEOUT_MS
from pos_loyalty.store import Store
from tests.conftest import REPO
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)
from tests.serving import SAFETY_S


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def count(store: Store, model: Any, *where: Any) -> int:
    with store.uow() as uow:
        return int(uow.session.exec(select(func.count()).select_from(model).where(*where)).one())


def give_points(store: Store, customer_id: str, points: int) -> None:
    with store.uow(write=True) as uow:
        adjust_points(
            uow=uow,
            customer_id=customer_id,
            points=points,
            now=store.now(),
            note="тест",
            expire_days=365,
        )
        uow.commit()


def test_same_commit_replayed_20_times_is_one_sale(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    body = basket_json(
        line_json(unit_price=80000),
        line_json("cof", 15000, 2, category="coffee"),
        customer={"id": customer_id},
    )
    quote = evaluate_json(client, body)
    replies = [
        commit_json(client, {"quote_id": quote["quote_id"]}, key="till-1-sale-1") for _ in range(20)
    ]
    assert {r.status_code for r in replies} == {201}
    first = replies[0].json()
    assert all(r.json() == first for r in replies)
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in replies[1:])
    assert count(store, SaleTransaction) == 1
    assert count(store, LedgerEntry, col(LedgerEntry.customer_id) == customer_id) == 1
    assert count(store, ReceiptOutbox) == 1
    assert first["balance_after"] == 55 == first["points"]["earn"]  # 5 % of 1 100,00 ₽
    assert first["customer"]["lifetime_spend"] == 110000
    profile = client.get(f"/v1/customers/{customer_id}").json()
    assert profile["balance"] == 55
    with store.uow() as uow:
        counter = uow.session.get(StampCounter, (customer_id, "coffee-6th-free"))
        assert counter is not None and counter.count == 2
        outbox = uow.session.exec(select(ReceiptOutbox)).one()
        assert (outbox.transaction_id, outbox.status, outbox.lane_id) == (
            first["transaction_id"],
            "queued",
            "lane-1",
        )
        assert verify_ledger(uow=uow)[1] == []


def test_idempotency_key_rules(client: TestClient, store: Store) -> None:
    quote = evaluate_json(client, basket_json(line_json()))
    other = evaluate_json(client, basket_json(line_json(unit_price=100)))
    missing = client.post("/v1/transactions", json={"quote_id": quote["quote_id"]})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_required"
    assert commit_json(client, {"quote_id": quote["quote_id"]}, key="k").status_code == 201
    mismatch = commit_json(client, {"quote_id": other["quote_id"]}, key="k")
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "idempotency_mismatch"
    again = commit_json(client, {"quote_id": quote["quote_id"]}, key="another")
    assert again.status_code == 409 and again.json()["error"]["code"] == "quote_already_committed"
    assert count(store, SaleTransaction) == 1


def test_keys_are_scoped_by_api_key(client: TestClient, store: Store) -> None:
    from pos_loyalty.apikeys.models import Scope
    from tests.conftest import new_key

    first = commit_json(client, {"quote_id": evaluate_json(client, basket_json())["quote_id"]}, "k")
    quote = evaluate_json(client, basket_json())
    other_till = {"Authorization": f"Bearer {new_key(store, Scope.TILL)}", "Idempotency-Key": "k"}
    second = client.post(
        "/v1/transactions", json={"quote_id": quote["quote_id"]}, headers=other_till
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["transaction_id"] != second.json()["transaction_id"]


def test_stale_quotes_are_409(client: TestClient, store: Store) -> None:
    quote = evaluate_json(client, basket_json())
    start = store.now()
    store.clock = lambda: start + timedelta(minutes=15, seconds=1)
    expired = commit_json(client, {"quote_id": quote["quote_id"]})
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "quote_stale"
    store.clock = lambda: start
    fresh = evaluate_json(client, basket_json())
    store.rules = dataclasses.replace(store.rules, version="a-newer-bundle")
    changed = commit_json(client, {"quote_id": fresh["quote_id"]})
    assert changed.status_code == 409
    assert changed.json()["error"]["details"]["reason"] == "rules_changed"
    unknown = commit_json(client, {"quote_id": "nope"})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "quote_stale"
    assert count(store, SaleTransaction) == 0


def test_a_program_switched_mid_commit_does_not_reach_the_sale(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Head office's bundle becomes active while a basket is being committed: the sale is
    priced, limited and its points dated under the one program it started with."""
    import pos_loyalty.sales.commit as commit_module

    customer_id = enrol_json(client)
    before = store.rules
    newer_points = before.points.model_copy(update={"expire_days": 30})
    newer = dataclasses.replace(before, version="a-newer-bundle", points=newer_points)
    referral_reward = commit_module.reward_referral

    def switch_then_reward(**kwargs: Any) -> None:  # the first step of recording the sale
        store.rules = newer
        referral_reward(**kwargs)

    monkeypatch.setattr(commit_module, "reward_referral", switch_then_reward)
    reply = commit_json(
        client, basket_json(line_json(unit_price=50000), customer={"id": customer_id})
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["rules_version"] == before.version
    with store.uow() as uow:
        [(created_at, expires_at)] = uow.session.exec(
            select(LedgerEntry.created_at, LedgerEntry.expires_at).where(
                col(LedgerEntry.customer_id) == customer_id
            )
        ).all()
    assert expires_at - created_at == timedelta(days=before.points.expire_days)


def test_full_basket_commit_is_priced_afresh_with_payment(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    body = {
        **basket_json(line_json(unit_price=50000), customer={"id": customer_id}),
        "payment": {"method": "cash", "paid": 60000},
    }
    reply = commit_json(client, body)
    assert reply.status_code == 201, reply.text
    sale = reply.json()
    assert sale["total"] == 50000 and sale["payment"] == {
        "method": "cash",
        "paid": 60000,
        "change": 10000,
    }
    assert sale["balance_after"] == 25
    short = commit_json(client, {**body, "payment": {"method": "card", "paid": 100}})
    assert short.status_code == 422 and short.json()["error"]["code"] == "payment_insufficient"
    bad = commit_json(client, {**body, "lines": [{**line_json(), "qty": -1}]})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "lines.0.qty"
    assert count(store, SaleTransaction) == 1


def test_points_burn_and_the_balance_never_goes_below_zero(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    give_points(store, customer_id, 100)
    body = basket_json(
        line_json(unit_price=50000), customer={"id": customer_id}, points_to_redeem=80
    )
    quotes = [evaluate_json(client, body) for _ in range(2)]
    assert quotes[0]["points"]["burn"] == 80 and quotes[0]["total"] == 50000 - 8000
    first = commit_json(client, {"quote_id": quotes[0]["quote_id"]})
    assert first.status_code == 201
    assert first.json()["balance_after"] == 100 - 80 + 21  # 5 % of 420,00 ₽
    second = commit_json(client, {"quote_id": quotes[1]["quote_id"]})
    assert second.status_code == 409 and second.json()["error"]["code"] == "insufficient_points"
    assert client.get(f"/v1/customers/{customer_id}").json()["balance"] == 41


def test_concurrent_burns_never_take_a_balance_below_zero(client: TestClient, store: Store) -> None:
    """Six tills hold quotes that each burn 100 of the customer's 300 points and commit at once."""
    customer_id = enrol_json(client)
    give_points(store, customer_id, 300)
    body = basket_json(
        line_json(unit_price=50000), customer={"id": customer_id}, points_to_redeem=100
    )
    quotes = [evaluate_json(client, body)["quote_id"] for _ in range(6)]
    barrier = threading.Barrier(6)
    outcomes: list[Outcome | Exception] = []

    def till(n: int) -> None:
        barrier.wait(timeout=10)
        try:
            outcomes.append(
                run_idempotent(
                    store,
                    commit_job(
                        store=store,
                        key_owner="till",
                        idempotency_key=f"burn-{n}",
                        body={"quote_id": quotes[n]},
                        quote_id=quotes[n],
                        basket=None,
                        payment=None,
                    ),
                )
            )
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    sold = [o for o in outcomes if isinstance(o, Outcome)]
    refused = [o for o in outcomes if not isinstance(o, Outcome)]
    assert all(getattr(e, "code", None) == "insufficient_points" for e in refused), refused
    # Each sale burns 100 and earns 20 (5 % of 400,00 ₽): 300 → 220 → 140 → 60, then refused.
    assert len(sold) == 3 and len(refused) == 3
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []
    assert client.get(f"/v1/customers/{customer_id}").json()["balance"] == 60


def test_in_flight_key_is_409(store: Store) -> None:
    from pos_loyalty.sales.idempotency import IN_FLIGHT, IdempotencyInFlight

    with IN_FLIGHT.hold("till", "k"), pytest.raises(IdempotencyInFlight):
        run_idempotent(
            store,
            commit_job(
                store=store,
                key_owner="till",
                idempotency_key="k",
                body={},
                quote_id="q",
                basket=None,
                payment=None,
            ),
        )


def test_sale_result_holds_what_the_receipt_needs(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    sale = sell_json(client, basket_json(line_json(unit_price=80000), customer={"id": customer_id}))
    stored = client.get(f"/v1/transactions/{sale['transaction_id']}").json()
    assert stored["status"] == "completed"
    for key in (
        "lines",
        "applied",
        "points",
        "coupons_issued",
        "balance_after",
        "customer",
        "created_at",
        "lane_id",
    ):
        assert stored[key] == sale[key]
    issued = sale["coupons_issued"][0]
    assert issued["code"][4] == "-" and issued["qr"].startswith("PLC1.")


@contextmanager
def writes_held(store: Store, customer_id: str) -> Iterator[Callable[[], None]]:
    """Another client holds the database against this customer's sale, as a long report or a
    stuck session would: on PostgreSQL the customer's row lock (a commit stops half-way, after
    its idempotency claim), on SQLite the write lock (a commit waits at BEGIN IMMEDIATE).
    Yields `cut()`, which makes the database go away under the waiting commit: PostgreSQL
    terminates its connection; SQLite keeps holding past the busy timeout."""
    if store.engine.dialect.name == "postgresql":
        holder = store.engine.connect()
        holder.execute(
            text("SELECT id FROM customers WHERE id = :id FOR UPDATE"), {"id": customer_id}
        )

        def cut() -> None:
            with watcher(store) as watch:
                pid = blocked_commit(watch)
                watch.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        try:
            yield cut
        finally:
            holder.rollback()
            holder.close()
        return
    path = make_url(store.settings.database_url).database
    assert path is not None
    raw = sqlite3.connect(path, isolation_level=None, timeout=10)
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield lambda: time.sleep(SQLITE_BUSY_TIMEOUT_MS / 1000 + 1)
    finally:
        raw.execute("ROLLBACK")
        raw.close()


LOCK_WAITERS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


@contextmanager
def watcher(store: Store) -> Iterator[Connection]:
    """A connection outside any transaction: PostgreSQL snapshots pg_stat_activity once per
    transaction, so a poll inside one would never see the commit arrive."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def blocked_commit(watch: Connection) -> int:
    """The backend of the commit waiting on the held lock."""
    deadline = time.monotonic() + SAFETY_S
    while (pid := watch.execute(text(LOCK_WAITERS)).scalar()) is None:
        assert time.monotonic() < deadline, "the commit never reached the locked customer row"
        time.sleep(0.02)
    return int(pid)


def wait_until_blocked(store: Store) -> None:
    """Until the commit is waiting on the held lock (PostgreSQL shows it; SQLite cannot)."""
    if store.engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    with watcher(store) as watch:
        blocked_commit(watch)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    return thread, out


def test_same_key_while_the_first_is_in_flight_is_409(client: TestClient, store: Store) -> None:
    """A till that retries before its first attempt was answered gets 409 at once, and then,
    once the first is done, the first answer."""
    customer_id = enrol_json(client)
    body = {
        "quote_id": evaluate_json(client, basket_json(customer={"id": customer_id}))["quote_id"]
    }
    with writes_held(store, customer_id):
        first = in_thread(lambda: commit_json(client, body, key="retry-me"))
        wait_until_blocked(store)
        retry = in_thread(lambda: commit_json(client, body, key="retry-me"))
        # One of the two holds the key and waits on the lock; the other is refused at once.
        deadline = time.monotonic() + SAFETY_S
        while not (first[1] or retry[1]) and time.monotonic() < deadline:
            time.sleep(0.01)
        early = first[1] or retry[1]
        assert early, "neither attempt was answered while the database was held"
    for thread, _ in (first, retry):
        thread.join(timeout=30)
    refused = early[0]
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "idempotency_in_flight"
    sold = (retry if early is first[1] else first)[1][0]
    assert sold.status_code == 201, sold.text
    later = commit_json(client, body, key="retry-me")
    assert later.status_code == 201 and later.headers.get("Idempotent-Replayed") == "true"
    assert later.json()["transaction_id"] == sold.json()["transaction_id"]
    assert count(store, SaleTransaction) == 1


@pytest.mark.slow
def test_database_gone_mid_commit_is_503_with_retry_after_and_loses_nothing(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    body = {
        "quote_id": evaluate_json(client, basket_json(customer={"id": customer_id}))["quote_id"]
    }
    with writes_held(store, customer_id) as cut:
        attempt, reply = in_thread(lambda: commit_json(client, body, key="sale-1"))
        wait_until_blocked(store)
        cut()
        attempt.join(timeout=30)
    gone = reply[0]
    assert gone.status_code == 503, gone.text
    assert gone.headers["Retry-After"] == "2"
    assert gone.json()["error"]["code"] == "database_unavailable"
    # Nothing half-written: no sale, no points, no claimed key, no receipt.
    assert count(store, SaleTransaction) == 0
    assert count(store, LedgerEntry) == 0
    assert count(store, IdempotencyRecord) == 0
    assert count(store, ReceiptOutbox) == 0
    assert client.get(f"/v1/customers/{customer_id}").json()["balance"] == 0
    # The till retries with the same key and body, as Retry-After says: one sale, and only one.
    retry = commit_json(client, body, key="sale-1")
    assert retry.status_code == 201, retry.text
    again = commit_json(client, body, key="sale-1")
    assert again.json()["transaction_id"] == retry.json()["transaction_id"]
    assert count(store, SaleTransaction) == 1
    assert (
        client.get(f"/v1/customers/{customer_id}").json()["balance"]
        == retry.json()["balance_after"]
    )


def test_idempotency_keys_are_kept_at_least_24_hours_then_purged(
    client: TestClient, store: Store
) -> None:
    start = store.now()
    body = {"quote_id": evaluate_json(client, basket_json())["quote_id"]}
    first = commit_json(client, body, key="nightly")
    assert first.status_code == 201
    store.clock = lambda: start + timedelta(hours=25)
    report = run_housekeeping(store)
    assert (report.idempotency_purged, report.quotes_purged) == (0, 1)  # the quote went
    replay = commit_json(client, body, key="nightly")
    assert replay.status_code == 201
    assert replay.json()["transaction_id"] == first.json()["transaction_id"]
    assert count(store, IdempotencyRecord) == 1
    store.clock = lambda: start + IDEMPOTENCY_RETENTION + timedelta(minutes=1)
    report = run_housekeeping(store)
    assert report.idempotency_purged == 1
    assert count(store, IdempotencyRecord) == 0
    assert count(store, SaleTransaction) == 1  # the sale itself is never purged


def test_a_refused_commit_is_answered_the_same_on_every_retry_of_its_key(
    client: TestClient, store: Store
) -> None:
    """As Stripe does: the first answer stands for the key, a refusal included, so a retry never
    turns a refused sale into a sale behind the cashier's back; a new key is a new attempt."""
    customer_id = enrol_json(client)
    give_points(store, customer_id, 100)
    body = basket_json(
        line_json(unit_price=50000), customer={"id": customer_id}, points_to_redeem=80
    )
    first, second = (evaluate_json(client, body)["quote_id"] for _ in range(2))
    assert commit_json(client, {"quote_id": first}).status_code == 201  # 100 → 41 points
    refused = commit_json(client, {"quote_id": second}, key="till-2")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "insufficient_points"
    give_points(store, customer_id, 100)  # now the burn would be covered
    replay = commit_json(client, {"quote_id": second}, key="till-2")
    assert replay.status_code == 409 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == refused.json()
    other = commit_json(client, {"quote_id": first}, key="till-2")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_mismatch"
    assert count(store, SaleTransaction) == 1
    fresh = commit_json(client, {"quote_id": second})
    assert fresh.status_code == 201 and fresh.json()["balance_after"] == 141 - 80 + 21


# Another API worker: a process of its own on the same database and secret, with the same rules.
# It says "ready" once imported, commits when told "go", and prints what it got.
OTHER_WORKER = """
import json, sys
from pathlib import Path
from tests.conftest import make_settings
from tests.factories import SALE_RULES
from pos_loyalty.sales.commit import commit_job
from pos_loyalty.sales.idempotency import run_idempotent
from pos_loyalty.store import Store
secret_dir, db_url, quote_id, owner = sys.argv[1:5]
store = Store.open(make_settings(Path(secret_dir), db_url, SALE_RULES))
print("ready", flush=True)
sys.stdin.readline()
try:
    out = run_idempotent(store, commit_job(store=store, key_owner=owner, idempotency_key="twin",
                         body={"quote_id": quote_id}, quote_id=quote_id, basket=None, payment=None))
    print(json.dumps({"status": out.status, "replayed": out.replayed,
                      "transaction_id": out.body["transaction_id"]}), flush=True)
except Exception as exc:
    print(json.dumps({"error": getattr(exc, "code", repr(exc))}), flush=True)
"""


@pytest.mark.slow
def test_a_twin_on_another_api_worker_never_sells_twice(client: TestClient, store: Store) -> None:
    """Two API worker processes on one database get the same key at once: on PostgreSQL the
    second is refused with 409 while the first works (the key's advisory lock), not left
    waiting; SQLite's writers queue, so the second waits and gets the first answer."""
    customer_id = enrol_json(client)
    quote_id = evaluate_json(client, basket_json(customer={"id": customer_id}))["quote_id"]
    secret_dir = str(store.settings.secret_path.parent)
    owner = hash_api_key(client.headers["Authorization"].partition(" ")[2])  # the same till
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            OTHER_WORKER,
            secret_dir,
            store.settings.database_url,
            quote_id,
            owner,
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().strip() == "ready"
        with writes_held(store, customer_id):
            first = in_thread(
                lambda: commit_json(client, {"quote_id": quote_id}, key="twin").json()
            )
            wait_until_blocked(store)
            worker.stdin.write("go\n")
            worker.stdin.flush()
            if store.engine.dialect.name == "postgresql":
                ready, _, _ = wait_readable([worker.stdout], [], [], 10)
                assert ready, "the twin waited on the first instead of being refused at once"
                twin = json.loads(worker.stdout.readline())
            else:
                time.sleep(0.5)  # the twin waits at BEGIN IMMEDIATE like the first
        if store.engine.dialect.name != "postgresql":
            twin = json.loads(worker.stdout.readline())
        first[0].join(timeout=30)
    finally:
        worker.kill()
        worker.wait(timeout=10)
    sale = first[1][0]
    assert "transaction_id" in sale, sale
    if store.engine.dialect.name == "postgresql":
        assert twin == {"error": "idempotency_in_flight"}
    else:
        assert twin["status"] == 201 and twin["transaction_id"] == sale["transaction_id"]
    assert count(store, SaleTransaction) == 1
