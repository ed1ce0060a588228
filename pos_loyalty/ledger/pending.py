"""Points still waiting out the return window (`[points] pending_days`): shown, not spendable.

A sale's points are earned at once (they count in the balance, the profile and the receipt) but
may be spent only `pending_days` after the sale, so a refund in that window takes back points
the customer cannot have spent yet. 0 (the default) makes points spendable at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.storage import UnitOfWork


def pending_points(*, uow: UnitOfWork, customer_id: str, now: datetime, pending_days: int) -> int:
    """Points earned within the last `pending_days`, less what refunds reversed of them."""
    if pending_days <= 0:
        return 0
    since = now - timedelta(days=pending_days)
    recent = uow.session.exec(
        select(LedgerEntry.id, LedgerEntry.points).where(
            col(LedgerEntry.customer_id) == customer_id,
            col(LedgerEntry.kind) == EntryKind.EARN.value,
            col(LedgerEntry.created_at) > since,
        )
    ).all()
    if not recent:
        return 0
    earned = sum(int(points) for _, points in recent)
    reversed_total = uow.session.exec(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            col(LedgerEntry.customer_id) == customer_id,
            col(LedgerEntry.kind) == EntryKind.REVERSE.value,
            col(LedgerEntry.lot_id).in_([entry_id for entry_id, _ in recent]),
        )
    ).one()
    return max(0, earned + int(reversed_total))
