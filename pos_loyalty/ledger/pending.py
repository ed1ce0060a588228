"""Points still waiting out the return window (`[points] pending_days`): shown, not spendable.

A sale's points are earned at once (they count in the balance, the profile and the receipt) but
may be spent only `pending_days` after the sale, so a refund in that window takes back points
the customer cannot have spent yet. 0 (the default) makes points spendable at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class PendingPoints:
    """How many points wait, and when the last of them becomes spendable."""

    points: int = 0
    until: datetime | None = None

    def of_balance(self, balance: int) -> int:
        """The pending part of a balance: never more than the balance holds (a debt holds none)."""
        return min(self.points, max(0, balance))


def pending_state(
    *, uow: UnitOfWork, customer_id: str, now: datetime, pending_days: int
) -> PendingPoints:
    """Points earned within the last `pending_days`, less what refunds reversed of them, and the
    moment the newest sale still holding some of them leaves the window."""
    if pending_days <= 0:
        return PendingPoints()
    window = timedelta(days=pending_days)
    recent = uow.session.exec(
        select(LedgerEntry.id, LedgerEntry.points, LedgerEntry.created_at).where(
            col(LedgerEntry.customer_id) == customer_id,
            col(LedgerEntry.kind) == EntryKind.EARN.value,
            col(LedgerEntry.created_at) > now - window,
        )
    ).all()
    if not recent:
        return PendingPoints()
    reversed_by_lot = dict(
        uow.session.exec(
            select(LedgerEntry.lot_id, func.sum(LedgerEntry.points))
            .where(
                col(LedgerEntry.customer_id) == customer_id,
                col(LedgerEntry.kind) == EntryKind.REVERSE.value,
                col(LedgerEntry.lot_id).in_([entry_id for entry_id, _, _ in recent]),
            )
            .group_by(col(LedgerEntry.lot_id))
        ).all()
    )
    earned = sum(int(points) for _, points, _ in recent)
    points = max(0, earned + sum(int(v) for v in reversed_by_lot.values()))
    held = [
        created_at
        for entry_id, earned_points, created_at in recent
        if int(earned_points) + int(reversed_by_lot.get(entry_id, 0)) > 0
    ]
    return PendingPoints(points=points, until=max(held) + window if points and held else None)


def pending_points(*, uow: UnitOfWork, customer_id: str, now: datetime, pending_days: int) -> int:
    """Points earned within the last `pending_days`, less what refunds reversed of them."""
    return pending_state(
        uow=uow, customer_id=customer_id, now=now, pending_days=pending_days
    ).points
