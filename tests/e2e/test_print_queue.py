"""The durable print queue over real TCP (and a real pty) to the virtual ESC/POS printer.

The worker prints `receipt_outbox` rows; faults are the virtual printer's own (port closed when
offline, paper out, cover open), and a "restart" is a new store and worker on the same SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.print_queue import PrintJob, PrintWorker, store_receipt_renderer
from firmware_sim.printer import PrinterPty, PrinterServer, VirtualPrinter
from pos_loyalty.lanes import LaneEvent, LaneHub
from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox, SaleTransaction
from pos_loyalty.settings import PrinterConfig, Settings
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store
from tests.conftest import make_settings
from tests.filesystems import fill, tiny_filesystem
from tests.serving import SAFETY_S, wait_until

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

FAST = {"retry_initial_s": 0.05, "retry_max_s": 0.2, "timeout_s": 1.0}


def text_receipt_lines(transaction_id: str, total: int = 12_345) -> list[str]:
    return [f"RECEIPT {transaction_id}", *(f"line {n:02d}" for n in range(30)), f"TOTAL {total}"]


def text_receipt(*, uow: UnitOfWork, job: PrintJob, printer: PrinterConfig) -> bytes:
    """A stand-in for the receipts renderer: the sale's id and total, read in the worker's uow."""
    sale = uow.session.get(SaleTransaction, job.transaction_id)
    assert sale is not None
    lines = text_receipt_lines(sale.id, sale.total)
    return b"\x1b@" + "\n".join(lines).encode("ascii") + b"\n\x1dV\x00"


class Lane:
    """A store, its hub and the lane's print worker, with the lane's events to wait on."""

    def __init__(
        self,
        settings: Settings,
        render: Any = text_receipt,
        connection: str | None = None,
        poll_interval_s: float = 0.05,
        *,
        start: bool = True,
    ) -> None:
        self.store = Store.open(settings)
        self.hub = LaneHub(self.store)
        self.events: queue.Queue[LaneEvent] = queue.Queue()
        self.hub.add_listener(self.events.put)
        lane = settings.lanes[0]
        assert lane.printer is not None
        self.worker = PrintWorker(
            store=self.store,
            lane_id=lane.id,
            config=lane.printer,
            render=render,
            hub=self.hub,
            connection=connection,
            poll_interval_s=poll_interval_s,
            probe_interval_s=None,
        )
        if start:
            self.worker.start()

    def close(self) -> None:
        """The service stops: the worker, then the database."""
        self.worker.stop(timeout=5.0)
        self.store.close()

    def wait_for(
        self, predicate: Callable[[LaneEvent], bool], timeout: float = SAFETY_S
    ) -> LaneEvent:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            seen.append((event.type, event.data.get("status"), event.data.get("code")))
            if predicate(event):
                return event
        raise AssertionError(f"no matching lane event within {timeout} s; saw {seen}")


def queue_sale(store: Store, transaction_id: str, total: int = 12_345) -> int:
    """What a commit writes for the printer: the sale and its outbox row, in one transaction."""
    with store.uow(write=True) as uow:
        uow.session.add(
            SaleTransaction(
                id=transaction_id,
                store_id="msk-001",
                lane_id="lane-1",
                rules_version="test",
                currency="RUB",
                subtotal=total,
                discount_total=0,
                total=total,
                result={},
            )
        )
        uow.flush()
        row = ReceiptOutbox(transaction_id=transaction_id, kind="sale", lane_id="lane-1")
        uow.session.add(row)
        uow.flush()
        assert row.id is not None
        row_id = row.id
        uow.commit()
    return row_id


def outbox_row(store: Store, row_id: int) -> ReceiptOutbox:
    with store.uow() as uow:
        row = uow.session.get(ReceiptOutbox, row_id)
        assert row is not None
        uow.session.expunge(row)  # keeps its values after the unit of work ends
        return row


def printed(event: LaneEvent) -> bool:
    return event.type == "print_result" and event.data["status"] == "printed"


def waiting(code: str) -> Callable[[LaneEvent], bool]:
    return lambda e: (
        e.type == "print_result" and e.data["status"] == "waiting" and e.data["code"] == code
    )


@pytest.fixture
def printer(tmp_path: Path) -> VirtualPrinter:
    return VirtualPrinter("TM-T88V", paper_mm=5_000.0, out_dir=tmp_path / "receipts")


@pytest.fixture
def server(printer: VirtualPrinter) -> Iterator[PrinterServer]:
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        yield server


def lane_settings(tmp_path: Path, db_url: str, connection: str, **extra: Any) -> Settings:
    printer_config = {"connection": connection, **FAST}
    return make_settings(
        tmp_path, db_url, {"lanes": [{"id": "lane-1", "printer": printer_config}], **extra}
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str, server: PrinterServer) -> Settings:
    return lane_settings(tmp_path, db_url, server.url)


@pytest.fixture
def lane(settings: Settings) -> Iterator[Lane]:
    lane = Lane(settings)
    yield lane
    lane.close()


def test_a_queued_receipt_prints_and_leaves_the_queue(
    lane: Lane, printer: VirtualPrinter, tmp_path: Path
) -> None:
    row_id = queue_sale(lane.store, "t-1")
    lane.worker.wake()
    event = lane.wait_for(printed)
    assert event.data["transaction_id"] == "t-1" and event.data["outbox_id"] == row_id
    receipt = printer.wait_for_receipts(1)[0]
    assert receipt.lines[0] == "RECEIPT t-1" and receipt.lines[-1] == "TOTAL 12345"
    assert receipt.complete
    assert (tmp_path / "receipts" / "0001.png").is_file()
    row = outbox_row(lane.store, row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PRINTED.value, 1, None)
    state = lane.worker.status()
    assert state["connected"] and state["state"] == "ready"
    assert state["queue_length"] == 0 and state["printed"] == 1


def test_receipts_print_oldest_first_each_once(lane: Lane, printer: VirtualPrinter) -> None:
    for n in range(1, 4):
        queue_sale(lane.store, f"t-{n}")
    printer.wait_for_receipts(3)
    time.sleep(0.3)  # a few more polls: nothing prints twice
    assert [r.lines[0] for r in printer.receipts] == ["RECEIPT t-1", "RECEIPT t-2", "RECEIPT t-3"]


FAULTS: dict[str, tuple[Callable[[VirtualPrinter], None], Callable[[VirtualPrinter], None]]] = {
    "printer_offline": (lambda p: p.set_power(False), lambda p: p.set_power(True)),
    "printer_not_ready": (lambda p: p.set_offline(True), lambda p: p.set_offline(False)),
    "paper_out": (lambda p: p.set_paper_remaining(0), lambda p: p.refill()),
    "cover_open": (lambda p: p.set_cover_open(True), lambda p: p.set_cover_open(False)),
}


@pytest.mark.parametrize("code", list(FAULTS))
def test_a_job_waits_out_a_printer_fault_then_prints(
    code: str, settings: Settings, printer: VirtualPrinter
) -> None:
    make_fault, clear_fault = FAULTS[code]
    make_fault(printer)
    lane = Lane(settings)
    try:
        row_id = queue_sale(lane.store, "t-1")
        fault = lane.wait_for(lambda e: e.type == "device_fault")
        assert fault.data["code"] == code and fault.data["device"] == "lane-1/printer"
        wait = lane.wait_for(waiting(code))
        assert wait.data["outbox_id"] == row_id and wait.data["message"]
        time.sleep(0.4)  # several retries with backoff: still waiting, nothing printed
        row = outbox_row(lane.store, row_id)
        assert row.status == OutboxStatus.QUEUED.value and row.attempts >= 2
        assert row.last_error is not None and row.last_error.startswith(code)
        assert printer.receipt_count == 0
        state = lane.worker.status()
        assert state["state"] == code and state["queue_length"] == 1
        assert state["connected"] is (code != "printer_offline")

        clear_fault(printer)
        lane.wait_for(lambda e: e.type == "device_restored")
        lane.wait_for(printed)
        assert [r.lines[0] for r in printer.wait_for_receipts(1)] == ["RECEIPT t-1"]
        assert outbox_row(lane.store, row_id).status == OutboxStatus.PRINTED.value
    finally:
        lane.close()


def test_a_receipt_cut_short_by_the_paper_running_out_goes_on_on_the_new_roll(
    lane: Lane, printer: VirtualPrinter
) -> None:
    printer.set_paper_remaining(40.0)  # the roll ends part-way through the receipt
    row_id = queue_sale(lane.store, "t-1")
    event = lane.wait_for(
        lambda e: e.type == "print_result" and e.data["status"] == "held"
    )  # the rest of the job waits in the printer
    assert event.data["code"] == "paper_out" and "rest of the receipt" in event.data["message"]
    assert outbox_row(lane.store, row_id).status == OutboxStatus.QUEUED.value

    printer.refill()
    lane.wait_for(printed)
    torn, rest = printer.wait_for_receipts(2)
    assert not torn.complete and rest.complete
    assert torn.lines + rest.lines == text_receipt_lines("t-1")  # every line once
    assert outbox_row(lane.store, row_id).status == OutboxStatus.PRINTED.value


@pytest.mark.parametrize("fault", ["power_off", "unplug"])
def test_a_job_lost_part_way_is_closed_and_a_copy_queued_never_the_original_again(
    fault: str, lane: Lane, printer: VirtualPrinter
) -> None:
    printer.arm_fault(fault, after_lines=5)
    row_id = queue_sale(lane.store, "t-1")
    lost = lane.wait_for(lambda e: e.type == "print_result" and e.data["status"] == "interrupted")
    assert lost.data["outbox_id"] == row_id and "copy" in lost.data["message"]
    row = outbox_row(lane.store, row_id)
    assert row.status == OutboxStatus.PRINTED.value
    assert row.last_error is not None and row.last_error.startswith("interrupted")
    copy_id = lost.data["copy_outbox_id"]
    assert outbox_row(lane.store, copy_id).status == OutboxStatus.QUEUED.value
    printer.set_power(True)
    printer.set_unplugged(False)
    lane.wait_for(lambda e: printed(e) and e.data["outbox_id"] == copy_id)
    assert outbox_row(lane.store, copy_id).status == OutboxStatus.PRINTED.value


def test_nothing_is_lost_or_printed_twice_across_a_service_restart(
    settings: Settings, printer: VirtualPrinter
) -> None:
    printer.set_power(False)
    printer.set_paper_remaining(0)
    first = Lane(settings)
    rows = [queue_sale(first.store, "t-1"), queue_sale(first.store, "t-2")]
    first.wait_for(waiting("printer_offline"))
    first.close()  # the service stops with both receipts unprinted

    printer.set_power(True)  # back on, but still out of paper
    second = Lane(settings)
    try:
        second.wait_for(waiting("paper_out"))
        assert printer.receipt_count == 0
        printer.refill()
        printer.wait_for_receipts(2)
        second.wait_for(printed)
        second.wait_for(printed)
    finally:
        second.close()

    third = Lane(settings)  # and once more: the printed jobs are done for good
    try:
        time.sleep(0.3)
        assert third.worker.status()["queue_length"] == 0
    finally:
        third.close()
    assert [r.lines[0] for r in printer.receipts] == ["RECEIPT t-1", "RECEIPT t-2"]
    assert all(r.complete for r in printer.receipts)
    store = Store.open(settings)
    try:
        assert [outbox_row(store, r).status for r in rows] == ["printed", "printed"]
    finally:
        store.close()


def test_a_receipt_that_cannot_be_rendered_leaves_the_queue_and_the_next_prints(
    settings: Settings, printer: VirtualPrinter
) -> None:
    def render(*, uow: UnitOfWork, job: PrintJob, printer: PrinterConfig) -> bytes:
        if job.transaction_id == "t-broken":
            raise KeyError("items")
        return text_receipt(uow=uow, job=job, printer=printer)

    lane = Lane(settings, render=render)
    try:
        broken = queue_sale(lane.store, "t-broken")
        queue_sale(lane.store, "t-2")
        failed = lane.wait_for(lambda e: e.type == "print_result" and e.data["status"] == "failed")
        assert failed.data["code"] == "render_failed" and "KeyError" in failed.data["message"]
        lane.wait_for(printed)
        assert [r.lines[0] for r in printer.wait_for_receipts(1)] == ["RECEIPT t-2"]
        row = outbox_row(lane.store, broken)
        assert row.status == OutboxStatus.FAILED.value
        assert row.last_error is not None and row.last_error.startswith("render_failed")
        assert lane.worker.status()["failed"] == 1
    finally:
        lane.close()


def test_python_escpos_serial_over_the_printer_pty(
    tmp_path: Path, db_url: str, printer: VirtualPrinter
) -> None:
    with PrinterPty(printer, link=tmp_path / "printer0") as pty:
        settings = lane_settings(tmp_path, db_url, f"serial://{pty.port}?baudrate=38400")
        lane = Lane(settings)
        try:
            printer.set_paper_remaining(0)
            queue_sale(lane.store, "t-serial")
            lane.wait_for(waiting("paper_out"))
            printer.refill()
            lane.wait_for(printed)
            assert printer.wait_for_receipts(1)[0].lines[0] == "RECEIPT t-serial"
        finally:
            lane.close()


def test_a_committed_sale_prints_through_the_receipts_renderer(
    tmp_path: Path, db_url: str, server: PrinterServer, printer: VirtualPrinter
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pos_loyalty.apikeys.models import Scope
    from pos_loyalty.receipts.reprint import queue_reprint
    from tests.conftest import new_key
    from tests.factories import SALE_RULES, basket_json, line_json, sell_json

    settings = lane_settings(tmp_path, db_url, server.url, **SALE_RULES)
    store = Store.open(settings)
    lane = Lane(settings, render=store_receipt_renderer(store))
    try:
        with TestClient(create_app(settings, store=store)) as client:
            client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
            sale = sell_json(client, basket_json(line_json(unit_price=80_000, name="Сыр")))
        lane.wait_for(printed)
        receipt = printer.wait_for_receipts(1)[0]
        assert receipt.complete
        assert any("Магазин у дома" in line for line in receipt.lines)
        assert any("Сыр" in line for line in receipt.lines)

        with store.uow(write=True) as uow:  # the cashier asks for a copy
            queue_reprint(
                uow=uow,
                settings=settings,
                transaction_id=sale["transaction_id"],
                now=store.now(),
            )
        lane.worker.wake()
        reprint = lane.wait_for(printed)
        assert reprint.data["transaction_id"] == sale["transaction_id"]
        copy = printer.wait_for_receipts(2)[1].lines
        marks = [line for line in copy if "КОПИЯ" in line]  # the copy says it is one
        assert len(marks) == 1 and not any("КОПИЯ" in line for line in receipt.lines)
        assert [line for line in copy if line not in marks] == receipt.lines
    finally:
        lane.close()
        store.close()


def test_device_manager_prints_on_the_simulated_lane_printer(tmp_path: Path, db_url: str) -> None:
    from drivers.manager import DeviceManager
    from pos_loyalty.cli.simulation import simulated_devices, uses_simulation

    settings = lane_settings(tmp_path, db_url, "sim://printer")
    assert uses_simulation(settings)
    store = Store.open(settings)
    hub = LaneHub(store)
    events: queue.Queue[LaneEvent] = queue.Queue()
    hub.add_listener(events.put)
    try:
        with (
            simulated_devices(settings, tmp_path / "sim") as sims,
            DeviceManager(
                settings,
                hub,
                printer_connections=sims.printer_connections,
                render_receipt=text_receipt,
            ),
        ):
            assert sims.printer_connections["lane-1"].startswith("tcp://127.0.0.1:")
            queue_sale(store, "t-1")
            receipt = sims.printers["lane-1"].wait_for_receipts(1)[0]
            assert receipt.lines[0] == "RECEIPT t-1"
            assert (sims.receipt_dirs["lane-1"] / "0001.txt").is_file()
            deadline = time.monotonic() + SAFETY_S
            while events.get(timeout=max(0.01, deadline - time.monotonic())).type != "print_result":
                pass
            (device,) = [d for d in hub.devices() if d["kind"] == "printer"]
            assert device["name"] == "lane-1/printer" and device["lane_id"] == "lane-1"
            assert device["connected"] and device["printed"] == 1 and device["queue_length"] == 0
        assert not [d for d in hub.devices() if d["kind"] == "printer"]
    finally:
        store.close()


def test_a_simulated_printer_without_its_simulator_is_reported_not_started(
    tmp_path: Path, db_url: str
) -> None:
    from drivers.manager import DeviceManager

    settings = lane_settings(tmp_path, db_url, "sim://printer")
    store = Store.open(settings)
    try:
        hub = LaneHub(store)
        with DeviceManager(settings, hub, render_receipt=text_receipt):
            (device,) = [d for d in hub.devices() if d["kind"] == "printer"]
            assert device["connected"] is False and device["state"] == "not_started"
            assert "simulated printer" in device["last_error"]
    finally:
        store.close()


class LinePrinterDevice:
    """The virtual printer behind a write-only device node (a FIFO, like /dev/usb/lp0): every
    job opened, written and closed is fed to it. `unplug()` removes the node."""

    def __init__(self, path: Path, printer: VirtualPrinter) -> None:
        self.path = path
        self.printer = printer
        self._stop = False
        os.mkfifo(path)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                with open(self.path, "rb") as node:  # blocks until a job opens it to write
                    while chunk := node.read(4096):
                        self.printer.feed(chunk)
            except FileNotFoundError:
                time.sleep(0.02)

    def unplug(self) -> None:
        wake = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # the waiting reader lets go
        self.path.unlink()
        os.close(wake)

    def replug(self) -> None:
        os.mkfifo(self.path)

    def close(self) -> None:
        self._stop = True
        if not self.path.exists():
            return
        with contextlib.suppress(OSError):  # wake the reader so it sees the stop
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)


def test_a_file_printer_receives_the_job_and_waits_while_the_device_is_missing(
    tmp_path: Path, db_url: str, printer: VirtualPrinter
) -> None:
    node = LinePrinterDevice(tmp_path / "lp0", printer)
    settings = lane_settings(tmp_path, db_url, f"file://{node.path}")
    lane = Lane(settings)
    try:
        queue_sale(lane.store, "t-1")
        lane.wait_for(printed)
        assert printer.wait_for_receipts(1)[0].lines[0] == "RECEIPT t-1"
        assert lane.worker.status()["connection"] == f"file://{node.path}"

        node.unplug()  # the USB cable is pulled: the device node goes away
        row_id = queue_sale(lane.store, "t-2")
        event = lane.wait_for(waiting("printer_offline"))
        assert event.data["outbox_id"] == row_id and str(node.path) in event.data["message"]
        assert outbox_row(lane.store, row_id).status == OutboxStatus.QUEUED.value

        node.replug()
        lane.wait_for(printed)
        assert [r.lines[0] for r in printer.wait_for_receipts(2)] == ["RECEIPT t-1", "RECEIPT t-2"]
        assert outbox_row(lane.store, row_id).status == OutboxStatus.PRINTED.value
    finally:
        lane.close()
        node.close()


def test_a_usb_printer_without_pyusb_is_reported_naming_what_to_install(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import escpos.printer

    from drivers.manager import DeviceManager

    monkeypatch.setattr(escpos.printer.Usb, "is_usable", staticmethod(lambda: False))
    settings = lane_settings(tmp_path, db_url, "usb://04b8:0202")
    store = Store.open(settings)
    try:
        hub = LaneHub(store)
        with DeviceManager(settings, hub, render_receipt=text_receipt):
            (device,) = hub.devices()
            assert (device["name"], device["connected"], device["state"]) == (
                "lane-1/printer",
                False,
                "not_started",
            )
            assert "pip install pyusb" in device["last_error"]
            (fault,) = hub.history("lane-1")
            assert fault.type == "device_fault" and "libusb" in fault.data["message"]
    finally:
        store.close()


def test_a_service_stopped_while_the_printer_holds_a_job_prints_a_copy_on_restart(
    settings: Settings, printer: VirtualPrinter
) -> None:
    printer.arm_fault("cover_open", after_lines=5)
    first = Lane(settings)
    row_id = queue_sale(first.store, "t-1")
    first.wait_for(lambda e: e.type == "print_result" and e.data["status"] == "held")
    first.close()  # stops without waiting for the cover: the job stays in the printer
    row = outbox_row_after_restart(settings, row_id)
    assert row.status == OutboxStatus.QUEUED.value
    assert row.last_error is not None and row.last_error.startswith("sent:")
    printer.set_cover_open(False)  # the original finishes on paper
    printer.wait_for_receipts(1)

    second = Lane(settings)
    try:
        lost = second.wait_for(
            lambda e: e.type == "print_result" and e.data["status"] == "interrupted"
        )
        copy_id = lost.data["copy_outbox_id"]
        second.wait_for(lambda e: printed(e) and e.data["outbox_id"] == copy_id)
    finally:
        second.close()
    assert [r.lines[0] for r in printer.wait_for_receipts(2)] == ["RECEIPT t-1", "RECEIPT t-1"]
    store = Store.open(settings)
    try:
        closed = outbox_row(store, row_id)
        assert closed.status == OutboxStatus.PRINTED.value
        assert closed.last_error is not None and closed.last_error.startswith("interrupted")
        assert outbox_row(store, copy_id).status == OutboxStatus.PRINTED.value
    finally:
        store.close()


def outbox_row_after_restart(settings: Settings, row_id: int) -> ReceiptOutbox:
    store = Store.open(settings)
    try:
        return outbox_row(store, row_id)
    finally:
        store.close()


def test_a_receipt_queued_through_the_lane_hub_prints_without_waiting_for_a_poll(
    settings: Settings, printer: VirtualPrinter
) -> None:
    lane = Lane(settings, poll_interval_s=3600.0)  # it would look at the queue once an hour
    try:
        queue_sale(lane.store, "t-1")
        lane.hub.receipt_queued("lane-1")  # what the commit, refund and reprint routes do
        lane.wait_for(printed)
        assert [r.lines[0] for r in printer.wait_for_receipts(1)] == ["RECEIPT t-1"]
    finally:
        lane.close()


def test_a_receipt_is_not_printed_while_its_printing_could_not_be_recorded(
    tmp_path: Path,
    db_url: str,
    sqlite_template: Path,
    server: PrinterServer,
    printer: VirtualPrinter,
) -> None:
    """The disk under the database is full: a receipt printed then could not be marked printed,
    and the service restarted meanwhile (as the store's was) printed it a second time. It now
    waits for space, then prints once, across the restart."""
    assert db_url.startswith("sqlite")  # the database's own disk fills: SQLite's
    with tiny_filesystem(tmp_path / "disk", "3m") as disk:
        shutil.copyfile(sqlite_template, disk / "store.db")
        settings = lane_settings(
            tmp_path,
            f"sqlite:///{disk / 'store.db'}",
            server.url,
            storage={"min_free_mb": 1, "reserve_mb": 0},
        )
        # The worker starts once the disk is full: running, it could take the job while `fill`
        # was still writing (a busy machine delayed its first look at the queue that long, and
        # it printed: a race, not the case this test is about).
        first = Lane(settings, start=False)
        row = queue_sale(first.store, "t-1")
        ballast = fill(disk)  # not a byte left
        first.worker.start()
        event = first.wait_for(waiting("disk_low"))
        assert "below the floor" in event.data["message"]
        assert printer.receipt_count == 0
        first.close()  # the operator restarts the service, the disk still full

        second = Lane(settings)
        try:
            second.wait_for(waiting("disk_low"))
            assert printer.receipt_count == 0
            ballast.unlink()  # space comes back
            second.wait_for(printed)
        finally:
            second.close()
        third = Lane(settings)  # and once more: the printed receipt is done for good
        try:
            wait_until(lambda: outbox_row(third.store, row).status == "printed", "not recorded")
        finally:
            third.close()
    assert [r.lines[0] for r in printer.receipts] == ["RECEIPT t-1"]
