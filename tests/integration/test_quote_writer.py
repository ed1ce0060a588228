"""Quotes stored by group commit: durable before the evaluation answers, flushed on close, a
failure reported to every waiter; and the hot-path JSON bodies refused like FastAPI refuses them."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from pos_loyalty.sales.models import StoredQuote
from pos_loyalty.sales.quotes import QuoteWriter
from pos_loyalty.store import Store
from tests.conftest import from_this_machine
from tests.factories import SALE_RULES, basket_json, line_json
from tests.serving import SAFETY_S

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WAIT_S = SAFETY_S  # a bound for a signal that comes, not a deadline


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def quote_row(total: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
        "rules_version": "v1",
        "customer_id": None,
        "lane_id": "lane-1",
        "request": {"lines": []},
        "result": {"total": total},
    }


def stored_totals(store: Store) -> dict[str, int]:
    with store.uow() as uow:
        return {q.id: q.result["total"] for q in uow.session.exec(select(StoredQuote))}


def test_each_quote_is_in_the_database_when_its_waiter_hears_back(store: Store) -> None:
    writer = QuoteWriter(store)
    rows = [quote_row(total) for total in range(40)]
    seen_when_done: dict[str, bool] = {}
    all_done = threading.Event()

    def submit(row: dict[str, Any]) -> None:
        def done(error: BaseException | None) -> None:  # on the writer thread
            seen_when_done[row["id"]] = error is None and row["id"] in stored_totals(store)
            if len(seen_when_done) == len(rows):
                all_done.set()

        writer.submit(row, done)

    threads = [threading.Thread(target=submit, args=(row,)) for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert all_done.wait(WAIT_S)
    writer.close()
    assert seen_when_done == {row["id"]: True for row in rows}
    assert stored_totals(store) == {row["id"]: row["result"]["total"] for row in rows}


def test_close_stores_what_is_queued_and_refuses_more(store: Store) -> None:
    writer = QuoteWriter(store)
    outcomes: list[BaseException | None] = []
    rows = [quote_row(total) for total in range(5)]
    for row in rows:
        writer.submit(row, outcomes.append)
    writer.close()
    assert outcomes == [None] * 5
    assert set(stored_totals(store)) == {row["id"] for row in rows}
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(quote_row(1), outcomes.append)


def test_a_failed_batch_reaches_its_waiters_and_the_writer_carries_on(store: Store) -> None:
    writer = QuoteWriter(store)
    first = quote_row(1)
    outcomes: list[BaseException | None] = []
    done_once = threading.Event()

    def record(error: BaseException | None) -> None:
        outcomes.append(error)
        done_once.set()

    writer.submit(first, record)
    assert done_once.wait(WAIT_S)
    done_once.clear()
    writer.submit({**quote_row(2), "id": first["id"]}, record)  # the same id again: refused
    assert done_once.wait(WAIT_S)
    later = quote_row(3)
    writer.submit(later, outcomes.append)
    writer.close()
    assert outcomes[0] is None and isinstance(outcomes[1], Exception) and outcomes[2] is None
    assert stored_totals(store) == {first["id"]: 1, later["id"]: 3}


def test_the_quote_an_evaluation_returns_is_stored_and_commits(client: TestClient) -> None:
    quote = client.post("/v1/baskets/evaluate", json=basket_json(line_json())).json()
    sale = client.post(
        "/v1/transactions",
        json={"quote_id": quote["quote_id"]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert sale.status_code == 201, sale.text
    assert sale.json()["total"] == quote["total"]


@pytest.mark.parametrize("path", ["/v1/baskets/evaluate", "/v1/transactions"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "body: a JSON body is required"),
        (b'{"store_id": ', "body: the body is not valid JSON"),
    ],
)
def test_a_missing_or_broken_body_is_a_422_naming_the_body(
    client: TestClient, path: str, content: bytes, message: str
) -> None:
    reply = client.post(
        path,
        content=content,
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["message"] == message


def test_a_commit_body_that_is_not_an_object_is_a_422(client: TestClient) -> None:
    reply = client.post(
        "/v1/transactions", json=[1, 2], headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert reply.status_code == 422 and reply.json()["error"]["details"][0]["field"] == "body"


def test_the_docs_still_describe_the_bodies_read_by_hand(client: TestClient) -> None:
    paths = from_this_machine(client).get("/openapi.json").json()["paths"]
    evaluate = paths["/v1/baskets/evaluate"]["post"]["requestBody"]["content"]
    commit = paths["/v1/transactions"]["post"]["requestBody"]["content"]
    assert "lines" in evaluate["application/json"]["schema"]["properties"]
    assert "anyOf" in commit["application/json"]["schema"]
