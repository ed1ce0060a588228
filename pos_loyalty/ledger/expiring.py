"""The points that expire next: every lot that runs out on the nearest local date, summed.

The receipt's "Сгорят" line is computed once, from the ledger as the sale leaves it, and kept
with the sale, so every reprint says the same; the profile uses the same rule for now.

A sale reads only the lots after the customer's checkpoint (`LotCheckpoint`), not the whole
history: the lots before it are used up, so the balance alone says how much of the debits
reaches the rest. A loyal customer's thousandth sale reads the lots still open, and every
`STEP` lots found used up move the checkpoint on (in the sale's transaction, its customer row
locked). A credit that lands before the checkpoint after it was written, or a balance the open
lots cannot hold, sends the sale back to the whole ledger, which writes a fresh checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from pos_loyalty.ledger.service import (
    Lot,
    LotEntry,
    LotState,
    compute_lots,
    lot_entries,
    lot_order,
)
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import utc_from_driver

STEP = 8  # used-up lots a sale reads before it moves the checkpoint past them


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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """See `LotCheckpoint`: the last used-up lot in lot order, and the newest entry then."""

    expires_at: datetime | None
    entry_id: int
    seen: int

    def covers(self, credit: OpenCredit | LotEntry) -> bool:
        """Whether a credit stands at or before the checkpoint in lot order."""
        return lot_order(credit) <= (self.expires_at is None, self.expires_at, self.entry_id)


@dataclass(frozen=True, slots=True)
class OpenCredit:
    """A credit (a lot) and the debits pinned to it, summed (≤ 0)."""

    id: int
    points: int
    expires_at: datetime | None
    pinned: int = 0


_CHECKPOINT = (
    "SELECT settled_expires_at, settled_entry_id, seen_entry_id FROM lot_checkpoints"
    " WHERE customer_id = ?"
)
# The credits after a checkpoint in lot order (the SQL form of `not Checkpoint.covers`), each
# part one range of the credits' (customer_id, expires_at, id) index: the never-expiring ones,
# and for a checkpoint on a date, those after it.
_CREDITS = "SELECT id, points, expires_at FROM ledger_entries WHERE customer_id = ? AND points > 0"
_AFTER_NEVER = f"{_CREDITS} AND expires_at IS NULL AND id > ?"
_AFTER_A_DATE = f"{_CREDITS} AND expires_at IS NULL UNION {_CREDITS} AND (expires_at, id) > (?, ?)"
# Those credits and every credit newer than the checkpoint (the ones it may cover), each with
# the debits pinned to it summed: per credit, by the index on lot_id.
_OPEN_CREDITS = (
    "SELECT id, points, expires_at, (SELECT coalesce(sum(d.points), 0) FROM ledger_entries d"
    " WHERE d.lot_id = c.id AND d.points < 0) FROM ({after} UNION {_CREDITS} AND id > ?) c"
    " ORDER BY id"
)
_SAVE = (
    "INSERT INTO lot_checkpoints (customer_id, settled_expires_at, settled_entry_id,"
    " seen_entry_id) VALUES (?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET"
    " settled_expires_at = excluded.settled_expires_at,"
    " settled_entry_id = excluded.settled_entry_id, seen_entry_id = excluded.seen_entry_id"
)
_FORGET = "DELETE FROM lot_checkpoints WHERE customer_id = ?"


@lru_cache(maxsize=2)
def _open_credits(never: bool) -> str:
    return _OPEN_CREDITS.format(after=_AFTER_NEVER if never else _AFTER_A_DATE, _CREDITS=_CREDITS)


def load_checkpoint(*, uow: UnitOfWork, customer_id: str) -> Checkpoint | None:
    row = uow.driver(_CHECKPOINT, (customer_id,)).fetchone()
    if row is None:
        return None
    return Checkpoint(utc_from_driver(row[0]), int(row[1]), int(row[2]))


def credits_after(*, uow: UnitOfWork, customer_id: str, at: Checkpoint) -> list[OpenCredit]:
    """The credits after the checkpoint in lot order and every credit newer than it, oldest
    first, each with what is pinned to it (entries the session holds are flushed first)."""
    after: tuple[Any, ...] = (
        (customer_id, at.entry_id)
        if at.expires_at is None
        else (customer_id, customer_id, at.expires_at, at.entry_id)
    )
    uow.flush()
    rows = uow.driver(_open_credits(at.expires_at is None), (*after, customer_id, at.seen))
    return [
        OpenCredit(row[0], int(row[1]), utc_from_driver(row[2]), int(row[3]))
        for row in rows.fetchall()
    ]


def lots_after(at: Checkpoint, credits: Sequence[OpenCredit], balance: int) -> LotState | None:
    """The lots after `at`, as `compute_lots` of the whole ledger has them, from `credits_after`
    and the balance (the sum of every entry); None when the checkpoint no longer holds (a credit
    it covers is among `credits`) or the balance is more than these lots hold.

    The lots `at` covers are used up, so every debit not pinned to a lot after it (and what a
    pinned one takes beyond its lot) went to them or on to the lots after it, oldest first: with
    no debt, what reaches the lots after it is what they hold, less the balance."""
    credits = sorted(credits, key=lot_order)
    if credits and at.covers(credits[0]):
        return None
    if balance <= 0:  # a debt (or nothing): every lot is used up
        return LotState(tuple(Lot(c.id, c.expires_at, c.points, 0) for c in credits), -balance)
    left = [max(0, credit.points + credit.pinned) for credit in credits]
    pool = sum(left) - balance
    if pool < 0:
        return None
    lots = []
    for credit, held in zip(credits, left, strict=True):
        take = min(pool, held)
        pool -= take
        lots.append(Lot(credit.id, credit.expires_at, credit.points, held - take))
    return LotState(tuple(lots), 0)


def move_checkpoint(
    *,
    uow: UnitOfWork,
    customer_id: str,
    state: LotState,
    newest: int,
    stale: bool,
) -> None:
    """Move the checkpoint past the used-up lots `state` starts with (ids up to `newest`, which
    no credit of the customer passes), once there are `STEP` of them, or whenever the old one
    went stale.
    Only with the customer's row locked, so no entry of theirs is in flight meanwhile."""
    settled = 0
    for lot in state.lots:
        if lot.remaining or lot.entry_id > newest:
            break
        settled += 1
    if settled == 0:
        if stale:
            uow.driver(_FORGET, (customer_id,))
        return
    if settled < STEP and not stale:
        return
    last = state.lots[settled - 1]
    uow.driver(_SAVE, (customer_id, last.expires_at, last.entry_id, newest))


def expiring_after_sale(
    *,
    uow: UnitOfWork,
    customer_id: str,
    burn: int,
    earned: Sequence[int],
    expires_at: datetime | None,
    balance: int,
    tz: tzinfo,
) -> Expiring | None:
    """What will expire next once the sale's burn and earn are in the ledger (computed before
    they are written, so the sale's row can carry it); `balance` is the customer's balance with
    them. The customer's row must be locked (the sale's balance UPDATE does it): the sale moves
    the checkpoint."""
    found = _lots(uow, customer_id, balance, _Sale(burn, earned, expires_at))
    move_checkpoint(
        uow=uow,
        customer_id=customer_id,
        state=found.state,
        newest=found.newest,
        stale=found.stale,
    )
    return nearest_expiring(found.state, tz)


def expiring_now(*, uow: UnitOfWork, customer_id: str, balance: int, tz: tzinfo) -> Expiring | None:
    """What expires next, for the profile and the lane screen (`balance`: the customer's); read
    only, so the checkpoint stays where the last sale left it."""
    return nearest_expiring(_lots(uow, customer_id, balance, _Sale(0, (), None)).state, tz)


@dataclass(frozen=True, slots=True)
class _Sale:
    burn: int
    earned: Sequence[int]
    expires_at: datetime | None

    def credits(self, newest: int) -> list[OpenCredit]:
        """The earned lots (not written yet), numbered after `newest`."""
        return [
            OpenCredit(newest + 1 + n, points, self.expires_at)
            for n, points in enumerate(p for p in self.earned if p)
        ]

    def entries(self, newest: int) -> list[LotEntry]:
        """The earned lots and the burn (not written yet), numbered after `newest`."""
        added = [LotEntry(c.id, c.points, None, c.expires_at) for c in self.credits(newest)]
        if self.burn:  # unpinned: it draws on the lots soonest-expiring first, whatever its id
            added.append(LotEntry(newest + len(added) + 1, -self.burn, None, None))
        return added


@dataclass(frozen=True, slots=True)
class _Found:
    state: LotState
    newest: int  # no credit of the customer has a greater id (the sale's are numbered after it)
    stale: bool  # there was a checkpoint, and it no longer holds


def _lots(uow: UnitOfWork, customer_id: str, balance: int, sale: _Sale) -> _Found:
    """The lots with the sale's entries in: after the checkpoint if it holds, else all of them."""
    checkpoint = load_checkpoint(uow=uow, customer_id=customer_id)
    if checkpoint is not None:
        credits = credits_after(uow=uow, customer_id=customer_id, at=checkpoint)
        newest = max(checkpoint.seen, max((c.id for c in credits), default=0))
        state = lots_after(checkpoint, [*credits, *sale.credits(newest)], balance)
        if state is not None:
            return _Found(state, newest, stale=False)
    entries = lot_entries(uow=uow, customer_id=customer_id)
    newest = max((e.id for e in entries), default=0)
    state = compute_lots([*entries, *sale.entries(newest)])
    return _Found(state, newest, stale=checkpoint is not None)
