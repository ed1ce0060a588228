"""Sales committed together (group commit, `run_jobs` and the SQLite sale writer): one
transaction for the batch, yet each sale all-or-nothing on its own; both databases."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import DataError, OperationalError
from sqlmodel import func, select

from api.schemas import BasketCommit
from pos_loyalty.customers.models import Customer
from pos_loyalty.errors import Conflict, InvalidInput
from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.sales.commit import Payment, commit_job
from pos_loyalty.sales.idempotency import (
    IdempotentJob,
    JobResult,
    Outcome,
    run_idempotent,
    run_jobs,
)
from pos_loyalty.sales.models import IdempotencyRecord, SaleTransaction
from pos_loyalty.sales.sale_writer import SaleWriter
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json
from tests.serving import SAFETY_S

WAIT_S = SAFETY_S  # a bound for a signal that comes, not a deadline


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def count(store: Store, model: Any) -> int:
    with store.uow() as uow:
        return int(uow.session.exec(select(func.count()).select_from(model)).one())


def sale(
    store: Store,
    customer_id: str,
    *,
    price: int = 20000,
    key: str | None = None,
    coupons: list[str] | None = None,
    payment: Payment | None = None,
) -> IdempotentJob:
    body = basket_json(line_json(unit_price=price), customer={"id": customer_id}, coupons=coupons)
    return commit_job(
        store=store,
        key_owner="till",
        idempotency_key=key or uuid.uuid4().hex,
        body=body,
        quote_id=None,
        basket=BasketCommit.model_validate(body),
        payment=payment,
    )


def failing(job: IdempotentJob, error: Exception) -> IdempotentJob:
    """`job`, whose work writes the whole sale and then fails with `error`."""

    def work(uow: UnitOfWork, now: datetime) -> Outcome:
        job.work(uow, now)
        raise error

    return IdempotentJob(job.key_owner, job.key, job.endpoint, job.digest, work)


# What can stop a sale half-way: a bug, or a value the database cannot store.
HALF_WAY_FAILURES = pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug"), DataError("INSERT …", {}, Exception("value out of range"))],
    ids=["bug", "value-not-storable"],
)


def commits_during(store: Store, action: Callable[[], Any]) -> int:
    """How many database transactions `action` committed."""
    seen = 0

    def counted(_: Any) -> None:
        nonlocal seen
        seen += 1

    event.listen(store.engine, "commit", counted)
    try:
        action()
    finally:
        event.remove(store.engine, "commit", counted)
    return seen


def test_a_batch_of_sales_is_one_transaction(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    jobs = [sale(store, customer_id, price=10000 * (n + 1)) for n in range(6)]
    results: list[JobResult] = []
    assert commits_during(store, lambda: results.extend(run_jobs(store, jobs))) == 1
    assert all(isinstance(r, Outcome) and r.status == 201 for r in results), results
    assert count(store, SaleTransaction) == 6
    # 5 % of 100 + 200 + … + 600 ₽ = 105 points, each sale seeing the one before it
    balances = [r.body["balance_after"] for r in results if isinstance(r, Outcome)]
    assert balances == [5, 15, 30, 50, 75, 105]
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []


def test_a_refused_sale_leaves_the_rest_of_its_batch_and_is_kept_under_its_key(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    short = sale(store, customer_id, payment=Payment("cash", 100))  # pays 1 ₽ for 200 ₽
    first, last = sale(store, customer_id), sale(store, customer_id)
    results = run_jobs(store, [first, short, last])
    assert isinstance(results[0], Outcome) and isinstance(results[2], Outcome)
    assert isinstance(results[1], InvalidInput) and results[1].code == "payment_insufficient"
    assert count(store, SaleTransaction) == 2
    # the same request again gets the same refusal, never a second try
    replay = run_idempotent(store, short)
    assert replay.replayed and replay.status == 422
    assert replay.body["error"]["code"] == "payment_insufficient"
    assert count(store, SaleTransaction) == 2


@HALF_WAY_FAILURES
def test_a_sale_that_fails_half_way_is_undone_alone_and_its_key_stays_free(
    client: TestClient, store: Store, error: Exception
) -> None:
    customer_id = enrol_json(client)
    broken = sale(store, customer_id, price=30000)
    good = sale(store, customer_id)
    results = run_jobs(store, [failing(broken, error), good])
    assert results[0] is error
    assert isinstance(results[1], Outcome) and results[1].status == 201
    assert count(store, SaleTransaction) == 1
    assert count(store, IdempotencyRecord) == 1  # the broken sale's key was not kept
    retried = run_idempotent(store, broken)
    assert retried.status == 201 and not retried.replayed
    assert retried.body["balance_after"] == 10 + 15


def test_a_database_error_fails_the_whole_batch_and_writes_nothing(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    outage = OperationalError("INSERT …", {}, Exception("disk I/O error"))
    jobs = [sale(store, customer_id), failing(sale(store, customer_id), outage)]
    with pytest.raises(OperationalError):
        run_jobs(store, jobs)
    assert count(store, SaleTransaction) == 0
    assert count(store, IdempotencyRecord) == 0
    # every till waiting on the writer hears of it; none is told its sale went through
    writer = SaleWriter(store)
    heard: list[JobResult | BaseException] = []
    both = threading.Event()

    def done(result: JobResult | BaseException) -> None:
        heard.append(result)
        if len(heard) == 2:
            both.set()

    with writer_busy(writer, sale(store, customer_id)):  # both queue up and go in one batch
        for job in jobs:
            writer.submit(job, done)
    assert both.wait(WAIT_S)
    writer.close()
    assert [type(r) for r in heard] == [OperationalError, OperationalError]
    assert count(store, SaleTransaction) == 1  # only the sale that kept the writer busy


def test_the_same_key_twice_in_one_batch_sells_once(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    job = sale(store, customer_id)
    first, again = run_jobs(store, [job, job])
    assert isinstance(first, Outcome) and isinstance(again, Outcome)
    assert again.replayed and again.body["transaction_id"] == first.body["transaction_id"]
    assert count(store, SaleTransaction) == 1


def test_eight_tills_on_the_sale_writer_spend_one_coupon_once(
    client: TestClient, store: Store
) -> None:
    customer_id = enrol_json(client)
    first = basket_json(line_json(unit_price=80000), customer={"id": customer_id})
    issued = sell_json(client, first)
    code = issued["coupons_issued"][0]["code"]
    writer = SaleWriter(store)
    results: list[JobResult | BaseException] = []
    all_heard = threading.Event()
    lock = threading.Lock()

    def done(result: JobResult | BaseException) -> None:
        with lock:
            results.append(result)
            if len(results) == 8:
                all_heard.set()

    with writer_busy(writer, sale(store, customer_id)):  # the eight arrive together
        for _ in range(8):
            writer.submit(sale(store, customer_id, price=30000, coupons=[code]), done)
    assert all_heard.wait(WAIT_S)
    writer.close()
    sold = [r for r in results if isinstance(r, Outcome)]
    refused = [r for r in results if not isinstance(r, Outcome)]
    assert len(sold) == 1
    assert all(isinstance(r, Conflict) and r.code == "coupon_already_redeemed" for r in refused)
    # the sale that issued it, the one that kept the writer busy and the one that spent it
    assert count(store, SaleTransaction) == 3


@contextmanager
def writer_busy(writer: SaleWriter, job: IdempotentJob) -> Iterator[None]:
    """Keep `writer` busy on `job` meanwhile, so that what is submitted queues up behind it and
    goes in the next batch (on either database, whatever the threads' timing)."""
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def held(uow: UnitOfWork, now: datetime) -> Outcome:
        started.set()
        assert release.wait(WAIT_S)
        return job.work(uow, now)

    writer.submit(
        IdempotentJob(job.key_owner, job.key, job.endpoint, job.digest, held),
        lambda _: finished.set(),
    )
    assert started.wait(WAIT_S)
    try:
        yield
    finally:
        release.set()
    assert finished.wait(WAIT_S)


@HALF_WAY_FAILURES
def test_a_sale_alone_that_fails_half_way_writes_nothing_and_its_key_stays_free(
    client: TestClient, store: Store, error: Exception
) -> None:
    """A sale with the transaction to itself (PostgreSQL's path, refunds, the CLI) has no
    savepoint: its failure rolls the whole transaction back."""
    customer_id = enrol_json(client)
    broken = sale(store, customer_id, price=30000)
    with pytest.raises(type(error)):
        run_idempotent(store, failing(broken, error))
    assert count(store, SaleTransaction) == 0
    assert count(store, IdempotencyRecord) == 0
    retried = run_idempotent(store, broken)
    assert retried.status == 201 and not retried.replayed
    assert retried.body["balance_after"] == 15  # its points, once


def test_a_sale_row_the_database_refuses_writes_nothing_and_leaves_the_key_free(
    client: TestClient, store: Store
) -> None:
    """The database refuses one of the sale's own rows, which go to PostgreSQL together (one
    round trip) and so fail only at the end: the till gets 409, nothing of the sale is kept,
    balance included, and the same key sells once the database takes the row again."""
    customer_id = enrol_json(client)
    assert run_idempotent(store, sale(store, customer_id)).status == 201
    balance = customer_balance(store, customer_id)
    with store.uow(write=True) as uow:  # a second receipt for printing is refused from now
        uow.session.execute(text("CREATE UNIQUE INDEX one_sale_receipt ON receipt_outbox (kind)"))
        uow.commit()
    second = sale(store, customer_id, price=30000)
    with pytest.raises(Conflict) as refused:
        run_idempotent(store, second)
    assert refused.value.code == "concurrent_conflict"
    assert count(store, SaleTransaction) == 1
    assert count(store, IdempotencyRecord) == 1
    assert customer_balance(store, customer_id) == balance
    with store.uow(write=True) as uow:
        uow.session.execute(text("DROP INDEX one_sale_receipt"))
        uow.commit()
    retried = run_idempotent(store, second)
    assert retried.status == 201 and not retried.replayed
    assert count(store, SaleTransaction) == 2


def customer_balance(store: Store, customer_id: str) -> int:
    with store.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        return customer.points_balance
