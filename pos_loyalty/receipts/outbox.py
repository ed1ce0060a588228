"""The receipt outbox as the print queue: what a lane's print worker reads and writes.

A sale or refund writes its `receipt_outbox` row in its own transaction; a reprint adds a row
(`pos_loyalty.receipts.reprint`). A lane's worker takes queued rows oldest first and records what
became of each job here: printed, waiting (with the reason), failed (cannot be rendered), or sent
and not confirmed. A job that was sent and then lost part-way (power cut, cable pulled, service
stopped while the printer worked) is never sent again as an original: the row is closed as
printed with the reason, and a new row prints the receipt again, marked «КОПИЯ» because an
earlier row printed it (`printed_before`).

The note that a job's bytes are going to the printer is committed before they go, naming the
worker that sent them, so it outlives the worker's process and its database connection: a
reprint after either went away mid-job knows the receipt may be on paper already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Update, func, select, update
from sqlmodel import col

from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox
from pos_loyalty.storage import UnitOfWork

LAST_ERROR_MAX = 500  # receipt_outbox.last_error's length
# last_error of a row whose bytes went to the printer and whose completion was not yet seen.
SENT_CODE = "sent"
# last_error of a row closed because its job was lost part-way; a copy was queued after it.
INTERRUPTED_CODE = "interrupted"


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
    last_error: str | None = None
    updated_at: datetime | None = None

    @property
    def sent_unconfirmed(self) -> bool:
        """An earlier attempt sent the job and never saw it finish (the service stopped)."""
        return (self.last_error or "").startswith(f"{SENT_CODE}:")

    @property
    def sent_by(self) -> str | None:
        """The worker whose note says it sent the job (None: no note, or one that names none)."""
        prefix = f"{SENT_CODE}: by "
        note = self.last_error or ""
        return note.removeprefix(prefix).partition(":")[0] if note.startswith(prefix) else None


def sent_note(owner: str) -> str:
    """`last_error` of a row whose bytes worker `owner` is sending."""
    return f"{SENT_CODE}: by {owner}: waiting for the printer to finish the receipt"


def _job(row: ReceiptOutbox) -> PrintJob:
    assert row.id is not None
    return PrintJob(
        id=row.id,
        transaction_id=row.transaction_id,
        refund_id=row.refund_id,
        kind=row.kind,
        lane_id=row.lane_id,
        attempts=row.attempts,
        created_at=row.created_at,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


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
    return None if row is None else _job(row)


def queued_count(*, uow: UnitOfWork, lane_id: str) -> int:
    """How many receipts wait for the lane's printer."""
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


def note_sent(*, uow: UnitOfWork, job_id: int, owner: str, now: datetime) -> None:
    """The job's bytes are about to go to the printer: the note is committed first, so that when
    this worker, its process or its database connection goes away before the job is seen to
    finish, the next attempt knows the receipt may be on paper already and prints a copy. (A row
    claimed with FOR UPDATE is freed by this commit; `reclaim` takes it back.)"""
    uow.session.execute(_still_queued(job_id).values(last_error=sent_note(owner), updated_at=now))
    uow.commit()


def reclaim(*, uow: UnitOfWork, job_id: int, owner: str) -> bool:
    """Lock the row again after `note_sent`'s commit (PostgreSQL, `FOR UPDATE`): True while it is
    still queued under `owner`'s note, so no other worker took it in between."""
    statement = (
        select(col(ReceiptOutbox.status), col(ReceiptOutbox.last_error))
        .where(col(ReceiptOutbox.id) == job_id)
        .with_for_update()
    )
    row = uow.session.execute(statement).first()
    return (
        row is not None
        and row.status == OutboxStatus.QUEUED.value
        and row.last_error == sent_note(owner)
    )


def close_interrupted(*, uow: UnitOfWork, job: PrintJob, reason: str, now: datetime) -> int:
    """The job was lost part-way (what reached the paper is unknown): the row is closed as
    printed with the reason and a new row queued behind it, which prints marked «КОПИЯ».
    Returns the new row's id."""
    uow.session.execute(
        _still_queued(job.id).values(
            status=OutboxStatus.PRINTED.value,
            attempts=ReceiptOutbox.attempts + 1,
            last_error=f"{INTERRUPTED_CODE}: {reason}"[:LAST_ERROR_MAX],
            updated_at=now,
        )
    )
    copy = ReceiptOutbox(
        transaction_id=job.transaction_id,
        refund_id=job.refund_id,
        kind=job.kind,
        lane_id=job.lane_id,
        status=OutboxStatus.QUEUED.value,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(copy)
    uow.flush()
    assert copy.id is not None
    uow.commit()
    return copy.id


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
