"""Printing a receipt again: a new outbox row that the lane's print worker picks up like any other.

A reprint never changes the sale; it only queues the same document once more, on the sale's lane
or on another lane that has a printer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import col, select

from pos_loyalty.errors import InvalidInput
from pos_loyalty.receipts.build import ReceiptNotFound, receipt_ids
from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox, Refund, SaleTransaction
from pos_loyalty.settings import Settings
from pos_loyalty.storage import UnitOfWork

_PRINTED_BEFORE = (
    select(func.count())
    .select_from(ReceiptOutbox)
    .where(
        col(ReceiptOutbox.transaction_id) == bindparam("transaction_id"),
        col(ReceiptOutbox.refund_id).is_not_distinct_from(bindparam("refund_id")),
        col(ReceiptOutbox.status) == OutboxStatus.PRINTED.value,
        col(ReceiptOutbox.id) < bindparam("job_id"),
    )
)


class NoPrinterForReceipt(InvalidInput):
    code = "no_printer"


@dataclass(frozen=True, slots=True)
class ReprintQueued:
    outbox_id: int
    transaction_id: str
    refund_id: str | None
    kind: str
    lane_id: str
    status: str

    def to_dict(self) -> dict[str, object]:
        return {
            "outbox_id": self.outbox_id,
            "transaction_id": self.transaction_id,
            "refund_id": self.refund_id,
            "kind": self.kind,
            "lane_id": self.lane_id,
            "status": self.status,
        }


def queue_reprint(
    *,
    uow: UnitOfWork,
    settings: Settings,
    transaction_id: str,
    now: datetime,
    lane_id: str | None = None,
    refund_id: str | None = None,
) -> ReprintQueued:
    """Queue the sale's receipt (or the slip of its refund `refund_id`) on `lane_id` (default:
    the sale's lane); commits the row. `transaction_id` may also be a refund's id: its slip."""
    transaction_id, refund_id = receipt_ids(uow, transaction_id, refund_id)
    transaction = uow.session.get(SaleTransaction, transaction_id)
    if transaction is None:
        raise ReceiptNotFound(
            f"no sale with transaction id {transaction_id!r}",
            details={"transaction_id": transaction_id},
        )
    if refund_id is not None:
        refund = uow.session.get(Refund, refund_id)
        if refund is None or refund.transaction_id != transaction.id:
            raise ReceiptNotFound(
                f"no refund {refund_id!r} of transaction {transaction_id!r}",
                code="refund_not_found",
                details={"transaction_id": transaction_id, "refund_id": refund_id},
            )
    target = lane_id or transaction.lane_id
    if target is None:
        raise NoPrinterForReceipt(
            "the sale has no lane; say which lane's printer to use (lane_id)",
            details={"field": "lane_id"},
        )
    lane = next((lane for lane in settings.lanes if lane.id == target), None)
    if lane is None or lane.printer is None:
        known = [lane.id for lane in settings.lanes if lane.printer is not None]
        raise NoPrinterForReceipt(
            f"lane {target!r} has no printer in the configuration",
            details={"lane_id": target, "lanes_with_printers": known},
        )
    row = ReceiptOutbox(
        transaction_id=transaction.id,
        refund_id=refund_id,
        kind="refund" if refund_id else "sale",
        lane_id=target,
        status=OutboxStatus.QUEUED.value,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(row)
    uow.flush()
    assert row.id is not None
    uow.commit()
    return ReprintQueued(row.id, transaction.id, refund_id, row.kind, target, row.status)


def printed_before(
    *, uow: UnitOfWork, job_id: int, transaction_id: str, refund_id: str | None
) -> bool:
    """Did an earlier outbox row print this receipt (or refund slip)? Then this one is a copy."""
    found = uow.session.execute(
        _PRINTED_BEFORE,
        {"transaction_id": transaction_id, "refund_id": refund_id, "job_id": job_id},
    ).scalar_one()
    return int(found) > 0
