"""Committing sales: one database transaction, exactly once per Idempotency-Key, both databases."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.ledger.service import adjust_points, verify_ledger
from pos_loyalty.sales.models import ReceiptOutbox, SaleTransaction, StampCounter
from pos_loyalty.sales.service import Outcome, commit_sale
from pos_loyalty.store import Store
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)


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
                commit_sale(
                    store=store,
                    key_owner="till",
                    idempotency_key=f"burn-{n}",
                    body={"quote_id": quotes[n]},
                    quote_id=quotes[n],
                    basket=None,
                    payment=None,
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
    from pos_loyalty.sales.service import IN_FLIGHT, IdempotencyInFlight

    with IN_FLIGHT.hold("till", "k"), pytest.raises(IdempotencyInFlight):
        commit_sale(
            store=store,
            key_owner="till",
            idempotency_key="k",
            body={},
            quote_id="q",
            basket=None,
            payment=None,
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
