"""The durable print queue: one worker thread per lane prints the lane's receipt outbox.

The queue IS the `receipt_outbox` table. The sale writes a row in its own transaction; the lane's
worker takes queued rows oldest first, renders each to ESC/POS, checks the printer, sends, and
marks the row printed only once the printer has taken the job. A printer that is offline, out of
paper or open leaves the row queued: the worker retries with exponential backoff and tells the
lane why (`print_result` with status `waiting`, `device_fault` / `device_restored`). Nothing lives
only in memory, so a restart loses nothing; a reprint is a new outbox row
(`pos_loyalty.receipts.reprint.queue_reprint`).

On PostgreSQL the row is claimed with `SELECT … FOR UPDATE SKIP LOCKED` for the whole job, so
several service processes can run workers for one lane; SQLite has one writer and one service, so
there the row is read, printed, then marked with `UPDATE … WHERE status = 'queued'`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, Self

from sqlalchemy import Update, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from drivers.printer import (
    PRINTER_NOT_READY_CODE,
    PRINTER_OFFLINE_CODE,
    EscPosPrinter,
    InvalidStatusReply,
    PrinterNotReady,
    PrinterStatus,
    PrinterUnavailable,
)
from pos_loyalty.lanes import DEVICE_FAULT, DEVICE_RESTORED, PRINT_RESULT, LaneHub
from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox
from pos_loyalty.settings import PrinterConfig
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

log = logging.getLogger(__name__)

LAST_ERROR_MAX = 500  # receipt_outbox.last_error's length
RENDER_FAILED_CODE = "render_failed"
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DISK_LOW_CODE = "disk_low"


# --- the queue (receipt_outbox) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrintJob:
    """A queued outbox row as the worker and the renderer see it (no session attached)."""

    id: int
    transaction_id: str
    refund_id: str | None
    kind: str  # sale | refund
    lane_id: str | None
    attempts: int
    created_at: datetime


def next_print_job(*, uow: UnitOfWork, lane_id: str, lock: bool = False) -> PrintJob | None:
    """The lane's oldest queued receipt; `lock` claims the row (`FOR UPDATE SKIP LOCKED`) until
    the unit of work ends, so two workers never print one row at the same time."""
    statement = (
        select(ReceiptOutbox)
        .where(
            col(ReceiptOutbox.status) == OutboxStatus.QUEUED.value,
            col(ReceiptOutbox.lane_id) == lane_id,
        )
        .order_by(col(ReceiptOutbox.id))
        .limit(1)
    )
    if lock:
        statement = statement.with_for_update(skip_locked=True)
    row = uow.session.execute(statement).scalars().first()
    if row is None:
        return None
    assert row.id is not None
    return PrintJob(
        id=row.id,
        transaction_id=row.transaction_id,
        refund_id=row.refund_id,
        kind=row.kind,
        lane_id=row.lane_id,
        attempts=row.attempts,
        created_at=row.created_at,
    )


def queued_count(*, uow: UnitOfWork, lane_id: str) -> int:
    statement = select(func.count()).where(
        col(ReceiptOutbox.status) == OutboxStatus.QUEUED.value,
        col(ReceiptOutbox.lane_id) == lane_id,
    )
    return int(uow.session.execute(statement).scalar_one())


def _still_queued(job_id: int) -> Update:
    return update(ReceiptOutbox).where(
        col(ReceiptOutbox.id) == job_id, col(ReceiptOutbox.status) == OutboxStatus.QUEUED.value
    )


def mark_printed(*, uow: UnitOfWork, job_id: int, now: datetime) -> bool:
    """The printer took the job. False when the row was no longer queued (printed elsewhere)."""
    result = uow.session.execute(
        _still_queued(job_id).values(
            status=OutboxStatus.PRINTED.value,
            attempts=ReceiptOutbox.attempts + 1,
            last_error=None,
            updated_at=now,
        )
    )
    uow.commit()
    return bool(getattr(result, "rowcount", 1))


def note_attempt(*, uow: UnitOfWork, job_id: int, error: str, now: datetime) -> None:
    """The printer could not take the job this time: it stays queued, with the reason kept."""
    uow.session.execute(
        _still_queued(job_id).values(
            attempts=ReceiptOutbox.attempts + 1, last_error=error[:LAST_ERROR_MAX], updated_at=now
        )
    )
    uow.commit()


def mark_failed(*, uow: UnitOfWork, job_id: int, error: str, now: datetime) -> None:
    """The job can never print as it is (it cannot be rendered): it leaves the queue so the
    receipts behind it still print; a reprint can be asked for once the cause is fixed."""
    uow.session.execute(
        _still_queued(job_id).values(
            status=OutboxStatus.FAILED.value,
            attempts=ReceiptOutbox.attempts + 1,
            last_error=error[:LAST_ERROR_MAX],
            updated_at=now,
        )
    )
    uow.commit()


# --- rendering -------------------------------------------------------------------------------


class ReceiptRenderer(Protocol):
    """Turns an outbox row into the bytes for the lane's printer (its profile and paper width)."""

    def __call__(self, *, uow: UnitOfWork, job: PrintJob, printer: PrinterConfig) -> bytes: ...


class ReceiptNotRenderable(Exception):
    """The renderer cannot make this row's receipt (e.g. a kind it does not know)."""


def store_receipt_renderer(store: Store) -> ReceiptRenderer:
    """The production renderer: the sale's receipt document (pos_loyalty.receipts), laid out for
    the printer's columns and rendered with python-escpos for its profile."""

    def render(*, uow: UnitOfWork, job: PrintJob, printer: PrinterConfig) -> bytes:
        from drivers.receipt_escpos import document_to_escpos
        from pos_loyalty.receipts.build import build_receipt
        from pos_loyalty.receipts.reprint import printed_before

        if job.kind not in {"sale", "refund"}:
            raise ReceiptNotRenderable(f"no receipt layout for outbox rows of kind {job.kind!r}")
        document = build_receipt(
            uow=uow,
            store=store.settings.store,
            secret=store.secret,
            transaction_id=job.transaction_id,
            refund_id=job.refund_id if job.kind == "refund" else None,
        )
        if printed_before(
            uow=uow, job_id=job.id, transaction_id=job.transaction_id, refund_id=job.refund_id
        ):
            document = replace(document, copy=True)
        return document_to_escpos(document, profile=printer.profile, width_mm=printer.width_mm)

    return render


# --- the worker ------------------------------------------------------------------------------


class StepOutcome(StrEnum):
    IDLE = "idle"  # nothing queued for the lane
    PRINTED = "printed"
    WAITING = "waiting"  # the printer could not take the job; it stays queued
    FAILED = "failed"  # the job could not be rendered; it left the queue


@dataclass
class _Problem:
    code: str
    message: str


class PrintWorker:
    """Prints one lane's queued receipts for as long as the service runs (a daemon thread)."""

    def __init__(
        self,
        *,
        store: Store,
        lane_id: str,
        config: PrinterConfig,
        render: ReceiptRenderer,
        hub: LaneHub | None = None,
        connection: str | None = None,
        printer: EscPosPrinter | None = None,
        name: str | None = None,
        poll_interval_s: float = 0.5,
        probe_interval_s: float | None = 5.0,
        retry_initial_s: float | None = None,
        retry_max_s: float | None = None,
    ) -> None:
        """`connection` overrides where the printer is (a simulator's address); `printer` is a
        ready driver instead. `probe_interval_s` asks an idle printer for its status so faults
        show before the next sale (None: never). Backoff defaults come from `config`."""
        self.store = store
        self.lane_id = lane_id
        self.config = config
        self.render = render
        self.hub = hub
        self.printer = printer or EscPosPrinter.from_config(
            config, connection=connection, timeout_s=config.timeout_s
        )
        self.name = name or f"{lane_id}/printer"
        self.poll_interval_s = poll_interval_s
        self.probe_interval_s = probe_interval_s
        self.retry_initial_s = retry_initial_s or config.retry_initial_s
        self.retry_max_s = retry_max_s or config.retry_max_s
        self._lock_rows = store.engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = 0.0
        # Printed, but the database did not take the news: never printed again by this process.
        self._printed_unrecorded: set[int] = set()
        self._last_waiting: tuple[int, str] | None = None
        self._fault: str | None = None
        self._last_contact = 0.0
        # What GET /v1/devices shows.
        self._connected: bool | None = None
        self._state = "unknown"
        self._last_error: str | None = None
        self._paper_near_end = False
        self._queue_length = 0
        self._printed = 0
        self._failed = 0
        self._waiting_job: int | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"print-{self.lane_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Finish the job in hand (bounded by the printer's timeouts), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: still busy with a job after %.1f s", self.name, timeout)

    def wake(self) -> None:
        """Look at the queue now (after a commit or a reprint) instead of at the next poll."""
        self._wake.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        """The printer's state for `GET /v1/devices`."""
        return {
            "connected": bool(self._connected),
            "state": self._state,
            "last_error": self._last_error,
            "queue_length": self._queue_length,
            "waiting_job": self._waiting_job,
            "printed": self._printed,
            "failed": self._failed,
            "paper_near_end": self._paper_near_end,
            "connection": self.printer.url,
            "profile": self.config.profile,
            "width_mm": self.config.width_mm,
        }

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        log.info("%s: printing lane %s's receipts on %s", self.name, self.lane_id, self.printer.url)
        while not self._stop.is_set():
            try:
                outcome = self.step()
            except SQLAlchemyError as exc:
                log.error(
                    "%s: the print queue is unreachable, jobs stay queued: %s", self.name, exc
                )
                self._last_error = f"{DATABASE_UNAVAILABLE_CODE}: {exc}"[:LAST_ERROR_MAX]
                outcome = StepOutcome.WAITING
            except Exception:
                log.exception("%s: unexpected failure; the job stays queued", self.name)
                outcome = StepOutcome.WAITING
            if outcome is StepOutcome.WAITING:
                self._delay = self._next_delay()
                self._stop.wait(self._delay)
                continue
            self._delay = 0.0
            if outcome is StepOutcome.IDLE:
                try:
                    self._probe_if_due()
                except Exception:  # the worker must outlive a probe that fails unexpectedly
                    log.exception("%s: status probe failed", self.name)
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()

    def _next_delay(self) -> float:
        """Exponential backoff: retry_initial_s, doubling, capped at retry_max_s."""
        return min(max(self._delay * 2, self.retry_initial_s), self.retry_max_s)

    def step(self) -> StepOutcome:
        """Take the lane's oldest queued receipt and try to print it once."""
        self._record_unrecorded()
        if self._lock_rows:
            with self.store.uow(write=True) as uow:
                job = next_print_job(uow=uow, lane_id=self.lane_id, lock=True)
                if job is None:
                    return self._idle()
                rendered = self._render(uow, job)
                return self._deliver(job, rendered, lambda: contextlib.nullcontext(uow))
        with self.store.uow() as uow:
            job = next_print_job(uow=uow, lane_id=self.lane_id)
            if job is None:
                return self._idle()
            rendered = self._render(uow, job)
        # SQLite: no transaction stays open while the printer works (sales must not wait on it).
        return self._deliver(job, rendered, lambda: self.store.uow(write=True))

    def _idle(self) -> StepOutcome:
        self._queue_length = 0
        self._waiting_job = None
        self._last_waiting = None
        return StepOutcome.IDLE

    def _render(self, uow: UnitOfWork, job: PrintJob) -> bytes | Exception:
        try:
            return self.render(uow=uow, job=job, printer=self.config)
        except SQLAlchemyError:
            raise
        except Exception as exc:
            log.exception("%s: receipt of outbox row %d cannot be rendered", self.name, job.id)
            return exc

    def _deliver(
        self,
        job: PrintJob,
        rendered: bytes | Exception,
        record: Callable[[], AbstractContextManager[UnitOfWork]],
    ) -> StepOutcome:
        if isinstance(rendered, Exception):
            return self._failed_to_render(job, rendered, record)
        if job.id in self._printed_unrecorded:
            return StepOutcome.WAITING  # printed already; only the database has to hear of it
        if (refusal := self.store.space.refusal()) is not None:
            return self._cannot_record(job, refusal)
        try:
            status = self.printer.print_job(rendered)
        except PrinterNotReady as exc:
            self._contact(exc.status)
            message = exc.status.message
            if exc.sent:
                message += "; the receipt will be printed again in full"
            return self._waiting(job, _Problem(exc.code, message), record)
        except (PrinterUnavailable, InvalidStatusReply) as exc:
            code = (
                PRINTER_OFFLINE_CODE
                if isinstance(exc, PrinterUnavailable)
                else PRINTER_NOT_READY_CODE
            )
            self._lost_contact(code, str(exc))
            return self._waiting(job, _Problem(code, str(exc)), record)
        self._contact(status)
        try:
            with record() as uow:
                if not mark_printed(uow=uow, job_id=job.id, now=self.store.now()):
                    log.warning("%s: outbox row %d was already marked printed", self.name, job.id)
                self._queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        except SQLAlchemyError:
            self._printed_unrecorded.add(job.id)
            log.error("%s: outbox row %d printed but not yet recorded", self.name, job.id)
            raise
        self._printed += 1
        self._waiting_job = None
        self._last_waiting = None
        self._publish(
            PRINT_RESULT,
            {
                "status": "printed",
                **self._job_fields(job),
                "attempts": job.attempts + 1,
                "paper_near_end": status.paper_near_end,
            },
        )
        return StepOutcome.PRINTED

    def _cannot_record(self, job: PrintJob, reason: str) -> StepOutcome:
        """The database's disk is below its floor: a receipt printed now could not be marked
        printed, and a restart would print it again. It waits (nothing is written) until space
        returns."""
        self._waiting_job = job.id
        self._last_error = f"{DISK_LOW_CODE}: {reason}"[:LAST_ERROR_MAX]
        if self._last_waiting != (job.id, DISK_LOW_CODE):
            self._last_waiting = (job.id, DISK_LOW_CODE)
            log.warning(
                "%s: outbox row %d waits, it could not be recorded: %s", self.name, job.id, reason
            )
            self._publish(
                PRINT_RESULT,
                {
                    "status": "waiting",
                    **self._job_fields(job),
                    "attempts": job.attempts,
                    "code": DISK_LOW_CODE,
                    "message": reason,
                    "retry_in_s": round(self._next_delay(), 3),
                },
            )
        return StepOutcome.WAITING

    def _waiting(
        self,
        job: PrintJob,
        problem: _Problem,
        record: Callable[[], AbstractContextManager[UnitOfWork]],
    ) -> StepOutcome:
        self._waiting_job = job.id
        with record() as uow:
            note_attempt(
                uow=uow,
                job_id=job.id,
                error=f"{problem.code}: {problem.message}",
                now=self.store.now(),
            )
            self._queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        retry_in = self._next_delay()
        log.info("%s: outbox row %d waits: %s", self.name, job.id, problem.message)
        if self._last_waiting != (job.id, problem.code):  # once per job and reason, not per retry
            self._last_waiting = (job.id, problem.code)
            self._publish(
                PRINT_RESULT,
                {
                    "status": "waiting",
                    **self._job_fields(job),
                    "attempts": job.attempts + 1,
                    "code": problem.code,
                    "message": problem.message,
                    "retry_in_s": round(retry_in, 3),
                },
            )
        return StepOutcome.WAITING

    def _failed_to_render(
        self,
        job: PrintJob,
        error: Exception,
        record: Callable[[], AbstractContextManager[UnitOfWork]],
    ) -> StepOutcome:
        message = f"the receipt cannot be rendered: {type(error).__name__}: {error}"
        with record() as uow:
            mark_failed(
                uow=uow,
                job_id=job.id,
                error=f"{RENDER_FAILED_CODE}: {message}",
                now=self.store.now(),
            )
            self._queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        self._failed += 1
        self._publish(
            PRINT_RESULT,
            {
                "status": "failed",
                **self._job_fields(job),
                "code": RENDER_FAILED_CODE,
                "message": message,
            },
        )
        return StepOutcome.FAILED

    def _record_unrecorded(self) -> None:
        """Jobs that printed while the database was away are marked before anything else."""
        for job_id in sorted(self._printed_unrecorded):
            with self.store.uow(write=True) as uow:
                mark_printed(uow=uow, job_id=job_id, now=self.store.now())
            self._printed_unrecorded.discard(job_id)
            log.info("%s: outbox row %d recorded as printed", self.name, job_id)

    # -- printer state and lane events ------------------------------------------------------------

    def _probe_if_due(self) -> None:
        if self.probe_interval_s is None or self._stop.is_set():
            return
        if time.monotonic() - self._last_contact < self.probe_interval_s:
            return
        try:
            status = self.printer.status()
        except (PrinterUnavailable, InvalidStatusReply) as exc:
            code = (
                PRINTER_OFFLINE_CODE
                if isinstance(exc, PrinterUnavailable)
                else PRINTER_NOT_READY_CODE
            )
            self._lost_contact(code, str(exc))
            return
        self._contact(status)

    def _contact(self, status: PrinterStatus) -> None:
        self._last_contact = time.monotonic()
        self._connected = True
        self._paper_near_end = status.paper_near_end
        self._set_fault(status.fault, status.message)

    def _lost_contact(self, code: str, message: str) -> None:
        self._last_contact = time.monotonic()
        self._connected = False
        self._set_fault(code, message)

    def _set_fault(self, code: str | None, message: str) -> None:
        """Publish `device_fault` when a fault starts or changes, `device_restored` when it ends."""
        previous, self._fault = self._fault, code
        self._state = code or "ready"
        self._last_error = message if code else None
        if code == previous:
            return
        if code is not None:
            self._publish(DEVICE_FAULT, {"device": self.name, "code": code, "message": message})
        elif previous is not None:
            self._publish(DEVICE_RESTORED, {"device": self.name, "message": message})

    def _job_fields(self, job: PrintJob) -> dict[str, Any]:
        return {
            "device": self.name,
            "outbox_id": job.id,
            "transaction_id": job.transaction_id,
            "refund_id": job.refund_id,
            "kind": job.kind,
        }

    def _publish(self, type_: str, data: dict[str, Any]) -> None:
        if self.hub is None:
            return
        try:
            self.hub.publish(self.lane_id, type_, data)
        except Exception:
            log.exception("%s: lane event %s not delivered", self.name, type_)
