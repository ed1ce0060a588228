"""The points that expire next: every lot that runs out on the nearest local date, summed.

The receipt's "Сгорят" line is computed once, from the ledger as the sale leaves it, and kept
with the sale, so every reprint says the same; the profile uses the same rule for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from pos_loyalty.ledger.service import LotEntry, LotState, compute_lots, lot_entries
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class Expiring:
    points: int
    expires_at: datetime  # the earliest moment on that day (what the receipt dates)

    def to_dict(self) -> dict[str, Any]:
        return {"points": self.points, "expires_at": self.expires_at.isoformat()}


def nearest_expiring(state: LotState, tz: tzinfo) -> Expiring | None:
    """All points left in lots expiring on the nearest store-local date, or None."""
    lots = [lot for lot in state.lots if lot.remaining > 0 and lot.expires_at is not None]
    if not lots:
        return None
    first = min(lot.expires_at for lot in lots if lot.expires_at is not None)
    day = first.astimezone(tz).date()
    points = sum(
        lot.remaining
        for lot in lots
        if lot.expires_at is not None and lot.expires_at.astimezone(tz).date() == day
    )
    return Expiring(points, first)


def expiring_after_sale(
    *,
    uow: UnitOfWork,
    customer_id: str,
    burn: int,
    earned: Sequence[int],
    expires_at: datetime | None,
    now: datetime,
    tz: tzinfo,
) -> Expiring | None:
    """What will expire next once the sale's burn and earn are in the ledger (computed before
    they are written, so the sale's row can carry it)."""
    entries = lot_entries(uow=uow, customer_id=customer_id)
    next_id = max((e.id for e in entries), default=0) + 1
    added: list[LotEntry] = []
    if burn:
        added.append(LotEntry(next_id, -burn, None, None))
        next_id += 1
    for points in earned:
        if points:
            added.append(LotEntry(next_id, points, None, expires_at))
            next_id += 1
    return nearest_expiring(compute_lots([*entries, *added]), tz)
