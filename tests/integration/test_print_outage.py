"""A receipt that may be on paper already is printed again only as a marked copy, on PostgreSQL too:
when the database goes away in the middle of a print job, and when the service stops with a job
in the printer. (The same on SQLite: `tests/e2e/test_print_queue.py`.)

The outage is real: the test database stops taking connections and every session on it is
terminated (`pg_terminate_backend`), as when PostgreSQL is restarted; the printer is the virtual
ESC/POS printer on TCP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from drivers.print_queue import store_receipt_renderer
from firmware_sim.printer import PrinterServer, VirtualPrinter
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.sales.models import OutboxStatus
from pos_loyalty.settings import Settings
from pos_loyalty.storage import make_engine
from pos_loyalty.storage.engine import normalise_url
from pos_loyalty.store import Store
from tests.conftest import _empty_pg, new_key
from tests.e2e.test_print_queue import (
    Lane,
    lane_settings,
    outbox_row,
    outbox_row_after_restart,
    printed,
    queue_sale,
)
from tests.factories import SALE_RULES, basket_json, line_json, sell_json
from tests.serving import wait_until

pytestmark = [
    pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True),
    pytest.mark.usefixtures("empty_database"),
]


@pytest.fixture
def empty_database(db_url: str) -> None:
    """The worker's PostgreSQL database is shared by the session's tests: start from empty."""
    engine = make_engine(db_url)
    try:
        _empty_pg(engine)
    finally:
        engine.dispose()


@pytest.fixture
def printer(tmp_path: Path) -> VirtualPrinter:
    return VirtualPrinter("TM-T88V", paper_mm=None, out_dir=tmp_path / "receipts")


@pytest.fixture
def server(printer: VirtualPrinter) -> Iterator[PrinterServer]:
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        yield server


@contextmanager
def database_outage(db_url: str) -> Iterator[None]:
    """The store's database goes away: it refuses new connections and every session on it is
    cut, until the block ends (as PostgreSQL restarting, seen from this database)."""
    url = make_url(normalise_url(db_url))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = url.database
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def held(event: object) -> bool:
    data = getattr(event, "data", {})
    return getattr(event, "type", "") == "print_result" and data.get("status") == "held"


def test_a_job_lost_while_the_database_was_away_reprints_as_a_marked_copy(
    tmp_path: Path, db_url: str, server: PrinterServer, printer: VirtualPrinter
) -> None:
    """The cover opens part-way through a receipt with a coupon; PostgreSQL goes away; then the
    printer is switched off, losing the rest. After both come back the receipt prints again, and
    it says «КОПИЯ»: the customer does not get the coupon on a second original."""
    settings = lane_settings(tmp_path, db_url, server.url, **SALE_RULES)
    store = Store.open(settings)
    lane = Lane(settings, render=store_receipt_renderer(store))
    try:
        printer.arm_fault("cover_open", after_lines=5)
        with TestClient(create_app(settings, store=store)) as client:
            client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
            sale = sell_json(client, basket_json(line_json(unit_price=80_000, name="Сыр")))
        coupon = sale["coupons_issued"][0]["code"]
        row_id = lane.wait_for(held).data["outbox_id"]

        with database_outage(db_url):
            printer.set_power(False)  # the rest of the receipt is lost with the printer's buffer
            wait_until(
                lambda: (lane.worker.status()["last_error"] or "").startswith(
                    "database_unavailable"
                ),
                "the worker noticing the database is away",
            )
        printer.set_power(True)
        reprinted = lane.wait_for(printed)

        torn, again = printer.wait_for_receipts(2)
        assert not torn.complete  # the start of the original, up to the fault
        assert not any("КОПИЯ" in line for line in torn.lines)
        assert any("КОПИЯ" in line for line in again.lines), again.text
        assert any(coupon in line for line in again.lines)
        closed = outbox_row(lane.store, row_id)
        assert closed.status == OutboxStatus.PRINTED.value
        assert (closed.last_error or "").startswith("interrupted")
        assert reprinted.data["outbox_id"] != row_id  # a copy's row, not the original's again
        assert outbox_row(lane.store, reprinted.data["outbox_id"]).status == "printed"
    finally:
        lane.close()
        store.close()


def test_a_service_stopped_with_a_job_in_the_printer_prints_a_copy_on_restart(
    settings_with_printer: Settings, printer: VirtualPrinter
) -> None:
    """On PostgreSQL the note that the job went to the printer is committed before the bytes go,
    so it outlives the claim's transaction: the restarted service prints a copy, not the original
    again (it waits out the note's grace first, in case its sender is alive)."""
    printer.arm_fault("cover_open", after_lines=5)
    first = Lane(settings_with_printer)
    row_id = queue_sale(first.store, "t-1")
    first.wait_for(held)
    first.close()  # stops without waiting for the cover: the job stays in the printer
    row = outbox_row_after_restart(settings_with_printer, row_id)
    assert row.status == OutboxStatus.QUEUED.value
    assert (row.last_error or "").startswith("sent: by ")
    printer.set_cover_open(False)  # the original finishes on paper
    printer.wait_for_receipts(1)

    second = Lane(settings_with_printer)
    try:
        lost = second.wait_for(
            lambda e: e.type == "print_result" and e.data["status"] == "interrupted"
        )
        assert lost.data["outbox_id"] == row_id
        second.wait_for(lambda e: printed(e) and e.data["outbox_id"] == lost.data["copy_outbox_id"])
    finally:
        second.close()
    assert [r.lines[0] for r in printer.wait_for_receipts(2)] == ["RECEIPT t-1", "RECEIPT t-1"]
    closed = outbox_row_after_restart(settings_with_printer, row_id)
    assert (closed.last_error or "").startswith("interrupted")


@pytest.fixture
def settings_with_printer(tmp_path: Path, db_url: str, server: PrinterServer) -> Settings:
    return lane_settings(tmp_path, db_url, server.url)
