"""The durable print queue: one worker thread per lane prints the lane's receipt outbox.

The queue IS the `receipt_outbox` table (its queries: `pos_loyalty.receipts.outbox`). The sale
writes a row in its own transaction and tells the lane hub, which wakes the lane's worker; the
worker takes queued rows oldest first, renders each to ESC/POS, checks the printer, sends the job
once, and marks the row printed when the printer has printed all of it. A printer that cannot
print leaves the row queued and unsent: the worker retries with exponential backoff and tells the
lane why (`print_result` with status `waiting`, `device_fault` / `device_restored`). A fault part-
way through a job (cover opened, paper out, cutter jam) stops the printer with the rest of the job
in its buffer: the worker says so and waits, and the receipt goes on when the cashier fixes it. A
job lost part-way (power cut, cable pulled) is not sent again as an original: its row is closed and
a copy queued, which prints marked «КОПИЯ». Nothing lives only in memory, so a restart loses
nothing; a reprint is a new outbox row (`pos_loyalty.receipts.reprint.queue_reprint`).

On PostgreSQL the row is claimed with `SELECT … FOR UPDATE SKIP LOCKED` for the whole job, so
several service processes can run workers for one lane; SQLite has one writer and one service, so
there the row is read, printed, then marked with `UPDATE … WHERE status = 'queued'`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol, Self

from sqlalchemy.exc import SQLAlchemyError

from drivers.print_report import RENDER_FAILED_CODE, PrinterReport
from drivers.printer import EscPosPrinter
from drivers.printer_status import (
    PRINTER_NOT_READY_CODE,
    PRINTER_OFFLINE_CODE,
    InvalidStatusReply,
    JobInterrupted,
    PrinterNotReady,
    PrinterUnavailable,
)
from pos_loyalty.lanes import LaneHub
from pos_loyalty.receipts.outbox import (
    LAST_ERROR_MAX,
    PrintJob,
    close_interrupted,
    mark_failed,
    mark_printed,
    next_print_job,
    note_attempt,
    note_sent,
    queued_count,
    reclaim,
)
from pos_loyalty.settings import PrinterConfig
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

log = logging.getLogger(__name__)

__all__ = ["PrintJob", "PrintWorker", "ReceiptRenderer", "StepOutcome", "store_receipt_renderer"]

_UNCONFIRMED = "the service stopped before the printer had finished the receipt"
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DISK_LOW_CODE = "disk_low"


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


class ClaimLost(Exception):
    """Between the note's commit and the new lock another worker took the row: nothing is sent."""


Recorder = Callable[[], AbstractContextManager[UnitOfWork]]


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
        claim_grace_s: float = 3.0,
    ) -> None:
        """`connection` overrides where the printer is (a simulator's address); `printer` is a
        ready driver instead. `probe_interval_s` asks an idle printer for its status so faults
        show before the next sale (None: never). Backoff defaults come from `config`.
        `claim_grace_s`: how long a row under another worker's fresh note is left to it."""
        self.store = store
        self.lane_id = lane_id
        self.config = config
        self.render = render
        self.hub = hub
        self.printer = printer or EscPosPrinter.from_config(
            config, connection=connection, timeout_s=config.timeout_s
        )
        self.name = name or f"{lane_id}/printer"
        self.report = PrinterReport(hub=hub, lane_id=lane_id, device=self.name)
        self.poll_interval_s = poll_interval_s
        self.probe_interval_s = probe_interval_s
        self.retry_initial_s = retry_initial_s or config.retry_initial_s
        self.retry_max_s = retry_max_s or config.retry_max_s
        self.claim_grace_s = claim_grace_s
        self.owner = uuid.uuid4().hex[:12]  # names this worker in the notes of rows it sends
        self._lock_rows = store.engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = 0.0
        # Printed, but the database did not take the news: never printed again by this process.
        self._printed_unrecorded: set[int] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self.hub is not None:
            self.hub.add_print_waker(self.lane_id, self.wake)
        self._thread = threading.Thread(target=self._run, name=f"print-{self.lane_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Finish the job in hand (bounded by the printer's timeouts), then stop."""
        self._stop.set()
        self._wake.set()
        if self.hub is not None:
            self.hub.remove_print_waker(self.lane_id, self.wake)
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
            **self.report.as_dict(),
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
                self.report.last_error = f"{DATABASE_UNAVAILABLE_CODE}: {exc}"[:LAST_ERROR_MAX]
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
                same = lambda: contextlib.nullcontext(uow)  # noqa: E731
                if job.sent_unconfirmed:
                    if self._sent_elsewhere_just_now(job):
                        return StepOutcome.WAITING
                    return self._lost_part_way(job, _UNCONFIRMED, same)
                rendered = self._render(uow, job)
                return self._deliver(job, rendered, same)
        with self.store.uow() as uow:
            job = next_print_job(uow=uow, lane_id=self.lane_id)
            if job is None:
                return self._idle()
            outcome = None if job.sent_unconfirmed else self._render(uow, job)

        # SQLite: no transaction stays open while the printer works (sales must not wait on it).
        def record() -> AbstractContextManager[UnitOfWork]:
            return self.store.uow(write=True)

        if outcome is None:
            return self._lost_part_way(job, _UNCONFIRMED, record)
        return self._deliver(job, outcome, record)

    def _sent_elsewhere_just_now(self, job: PrintJob) -> bool:
        """Another worker's note, fresh: it is between its note's commit and its new lock, not
        gone; its row is left to it for `claim_grace_s` (after that its worker is taken as gone)."""
        if job.sent_by in (None, self.owner) or job.updated_at is None:
            return False
        if self.store.now() - job.updated_at >= timedelta(seconds=self.claim_grace_s):
            return False
        log.info("%s: outbox row %d is being sent by worker %s", self.name, job.id, job.sent_by)
        return True

    def _idle(self) -> StepOutcome:
        self.report.idle()
        return StepOutcome.IDLE

    def _render(self, uow: UnitOfWork, job: PrintJob) -> bytes | Exception:
        try:
            return self.render(uow=uow, job=job, printer=self.config)
        except SQLAlchemyError:
            raise
        except Exception as exc:
            log.exception("%s: receipt of outbox row %d cannot be rendered", self.name, job.id)
            return exc

    def _deliver(self, job: PrintJob, rendered: bytes | Exception, record: Recorder) -> StepOutcome:
        if isinstance(rendered, Exception):
            return self._failed_to_render(job, rendered, record)
        if job.id in self._printed_unrecorded:
            return StepOutcome.WAITING  # printed already; only the database has to hear of it
        if (refusal := self.store.space.refusal()) is not None:
            return self._cannot_record(job, refusal)

        def sent() -> None:
            """Just before the bytes go: the note, committed; on PostgreSQL the row locked again."""
            with record() as uow:
                note_sent(uow=uow, job_id=job.id, owner=self.owner, now=self.store.now())
                if self._lock_rows and not reclaim(uow=uow, job_id=job.id, owner=self.owner):
                    raise ClaimLost(f"outbox row {job.id} was taken by another worker")

        try:
            status = self.printer.print_job(
                rendered,
                on_sent=sent,
                on_progress=lambda st: self.report.held(job, st),
                stop=self._stop,
            )
        except ClaimLost as exc:
            log.warning("%s: %s; nothing sent", self.name, exc)
            return StepOutcome.WAITING
        except PrinterNotReady as exc:
            self.report.contact(exc.status)
            return self._waiting(job, exc.code, exc.status.message, record)
        except JobInterrupted as exc:
            if self._stop.is_set():  # the row keeps its "sent" note: the next start prints a copy
                log.warning("%s: stopping with outbox row %d in the printer", self.name, job.id)
                return StepOutcome.WAITING
            self.report.lost_contact(PRINTER_OFFLINE_CODE, str(exc))
            return self._lost_part_way(job, str(exc), record)
        except (PrinterUnavailable, InvalidStatusReply) as exc:
            code = _unreachable_code(exc)
            self.report.lost_contact(code, str(exc))
            return self._waiting(job, code, str(exc), record)
        self.report.contact(status)
        try:
            with record() as uow:
                if not mark_printed(uow=uow, job_id=job.id, now=self.store.now()):
                    log.warning("%s: outbox row %d was already marked printed", self.name, job.id)
                self.report.queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        except SQLAlchemyError:
            self._printed_unrecorded.add(job.id)
            log.error("%s: outbox row %d printed but not yet recorded", self.name, job.id)
            raise
        self.report.printed_job(job, status)
        return StepOutcome.PRINTED

    def _cannot_record(self, job: PrintJob, reason: str) -> StepOutcome:
        """The database's disk is below its floor: a receipt printed now could not be marked
        printed, and a restart would print it again. It waits (nothing is written) until space
        returns."""
        self.report.last_error = f"{DISK_LOW_CODE}: {reason}"[:LAST_ERROR_MAX]
        if self.report.waiting(
            job,
            code=DISK_LOW_CODE,
            message=reason,
            attempts=job.attempts,
            retry_in_s=self._next_delay(),
        ):
            log.warning(
                "%s: outbox row %d waits, it could not be recorded: %s", self.name, job.id, reason
            )
        return StepOutcome.WAITING

    def _waiting(self, job: PrintJob, code: str, message: str, record: Recorder) -> StepOutcome:
        with record() as uow:
            note_attempt(uow=uow, job_id=job.id, error=f"{code}: {message}", now=self.store.now())
            self.report.queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        log.info("%s: outbox row %d waits: %s", self.name, job.id, message)
        self.report.waiting(
            job,
            code=code,
            message=message,
            attempts=job.attempts + 1,
            retry_in_s=self._next_delay(),
        )
        return StepOutcome.WAITING

    def _lost_part_way(self, job: PrintJob, reason: str, record: Recorder) -> StepOutcome:
        """Sent, then lost part-way: never sent again as an original; a marked copy follows."""
        with record() as uow:
            copy_id = close_interrupted(uow=uow, job=job, reason=reason, now=self.store.now())
            self.report.queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        log.warning("%s: outbox row %d lost part-way (%s); copy queued", self.name, job.id, reason)
        self.report.interrupted_job(job, reason, copy_id)
        return StepOutcome.WAITING

    def _failed_to_render(self, job: PrintJob, error: Exception, record: Recorder) -> StepOutcome:
        message = f"the receipt cannot be rendered: {type(error).__name__}: {error}"
        with record() as uow:
            mark_failed(
                uow=uow,
                job_id=job.id,
                error=f"{RENDER_FAILED_CODE}: {message}",
                now=self.store.now(),
            )
            self.report.queue_length = queued_count(uow=uow, lane_id=self.lane_id)
        self.report.failed_job(job, message)
        return StepOutcome.FAILED

    def _record_unrecorded(self) -> None:
        """Jobs that printed while the database was away are marked before anything else."""
        for job_id in sorted(self._printed_unrecorded):
            with self.store.uow(write=True) as uow:
                mark_printed(uow=uow, job_id=job_id, now=self.store.now())
            self._printed_unrecorded.discard(job_id)
            log.info("%s: outbox row %d recorded as printed", self.name, job_id)

    def _probe_if_due(self) -> None:
        """An idle printer is asked how it is now and then, so a fault shows before a sale."""
        if self.probe_interval_s is None or self._stop.is_set():
            return
        if time.monotonic() - self.report.last_contact < self.probe_interval_s:
            return
        try:
            status = self.printer.status()
        except (PrinterUnavailable, InvalidStatusReply) as exc:
            self.report.lost_contact(_unreachable_code(exc), str(exc))
            return
        self.report.contact(status)


def _unreachable_code(exc: PrinterUnavailable | InvalidStatusReply) -> str:
    return PRINTER_OFFLINE_CODE if isinstance(exc, PrinterUnavailable) else PRINTER_NOT_READY_CODE
