"""Print workers claim outbox rows on PostgreSQL: two services printing one lane never print a
receipt twice (`FOR UPDATE SKIP LOCKED`), and a claimed row is invisible to the other worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from drivers.print_queue import PrintWorker
from firmware_sim.printer import PrinterServer, VirtualPrinter
from pos_loyalty.receipts.outbox import next_print_job
from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox
from pos_loyalty.store import Store
from tests.e2e.test_print_queue import FAST, queue_sale, text_receipt
from tests.serving import SAFETY_S

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True
)


@pytest.fixture
def printer() -> VirtualPrinter:
    return VirtualPrinter("TM-T88V", paper_mm=None)


@pytest.fixture
def server(printer: VirtualPrinter) -> Iterator[PrinterServer]:
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        yield server


@pytest.fixture
def config_extra(server: PrinterServer) -> dict[str, Any]:
    return {"lanes": [{"id": "lane-1", "printer": {"connection": server.url, **FAST}}]}


def test_a_claimed_row_is_skipped_by_the_other_worker(store: Store) -> None:
    first, second = queue_sale(store, "t-1"), queue_sale(store, "t-2")
    with store.uow(write=True) as holder:
        held = next_print_job(uow=holder, lane_id="lane-1", lock=True)
        assert held is not None and held.id == first
        with store.uow(write=True) as other:
            skipped = next_print_job(uow=other, lane_id="lane-1", lock=True)
            assert skipped is not None and skipped.id == second


def test_two_workers_on_one_lane_print_each_receipt_once(
    store: Store, printer: VirtualPrinter
) -> None:
    for n in range(8):
        queue_sale(store, f"t-{n}")
    lane = store.settings.lanes[0]
    assert lane.printer is not None
    workers = [
        PrintWorker(
            store=Store.open(store.settings),
            lane_id="lane-1",
            config=lane.printer,
            render=text_receipt,
            name=f"lane-1/printer-{n}",
            poll_interval_s=0.02,
            probe_interval_s=None,
        )
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        printer.wait_for_receipts(8, timeout=SAFETY_S)
    finally:
        for worker in workers:
            worker.stop(timeout=5)
            worker.store.close()
    printed = sorted(r.lines[0] for r in printer.receipts)
    assert printed == sorted(f"RECEIPT t-{n}" for n in range(8))
    with store.uow() as uow:
        statuses = set(uow.session.execute(select(ReceiptOutbox.status)).scalars())
    assert statuses == {OutboxStatus.PRINTED.value}
    assert sum(w.status()["printed"] for w in workers) == 8
