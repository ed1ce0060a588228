"""Posting to the ledger, balances, lots and expiry, and the proof that the cache is right.

Entries are only inserted. The customer's cached `points_balance` changes in the same database
transaction as the entries, through one conditional UPDATE that also locks the customer row on
PostgreSQL, so concurrent burns for one customer queue up and can never take it below zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import exists, func
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from pos_loyalty.customers.models import Customer
from pos_loyalty.errors import Conflict, NotFound
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import utc_from_driver


class InsufficientPoints(Conflict):
    code = "insufficient_points"


@dataclass(frozen=True, slots=True)
class Lot:
    """Points credited by one entry, what is left of them, and when they expire (None: never)."""

    entry_id: int
    expires_at: datetime | None
    points: int
    remaining: int


@dataclass(frozen=True, slots=True)
class LotState:
    lots: tuple[Lot, ...]  # oldest-expiring first
    debt: int  # debits no lot could cover (a refund reversed points already spent)

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots) - self.debt

    def nearest_expiry(self) -> Lot | None:
        return next((lot for lot in self.lots if lot.remaining > 0 and lot.expires_at), None)


@dataclass(frozen=True, slots=True)
class LotEntry:
    """What lot arithmetic reads of a ledger entry."""

    id: int
    points: int
    lot_id: int | None
    expires_at: datetime | None


class _Entry(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def points(self) -> int: ...
    @property
    def lot_id(self) -> int | None: ...
    @property
    def expires_at(self) -> datetime | None: ...


def lot_order(entry: Any) -> tuple[bool, datetime | None, int]:
    """Where a credit stands among the lots: soonest expiry first, never-expiring last, then by
    id (the order debits draw from them)."""
    return (entry.expires_at is None, entry.expires_at, entry.id)


def compute_lots(entries: Iterable[_Entry]) -> LotState:
    """Attribute debits to lots: pinned debits to their lot first, the rest oldest-expiry first.

    Order-independent, so the answer is the same whenever it is computed; it is what a FIFO
    burn would have produced, with expiries and earn reversals taken from the lot they name.
    """
    entries = list(entries)
    credits = sorted((e for e in entries if e.points > 0), key=lot_order)
    left = {e.id: e.points for e in credits}
    pool = 0
    for entry in entries:
        if entry.points >= 0:
            continue
        amount = -entry.points
        if entry.lot_id is not None and entry.lot_id in left:
            take = min(amount, left[entry.lot_id])
            left[entry.lot_id] -= take
            amount -= take
        pool += amount
    lots: list[Lot] = []
    for entry in credits:
        assert entry.id is not None
        take = min(pool, left[entry.id])
        pool -= take
        lots.append(Lot(entry.id, entry.expires_at, entry.points, left[entry.id] - take))
    return LotState(tuple(lots), pool)


def customer_entries(*, uow: UnitOfWork, customer_id: str) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(col(LedgerEntry.customer_id) == customer_id)
    return list(uow.session.execute(stmt.order_by(col(LedgerEntry.id))).scalars())


# A customer's whole history, read on the driver: a loyal customer's every sale reads it (the
# receipt's "Сгорят" line), and ORM rows cost ~20x the driver's tuples.
_LOT_ENTRIES = (
    "SELECT id, points, lot_id, expires_at FROM ledger_entries WHERE customer_id = ? ORDER BY id"
)


def lot_entries(*, uow: UnitOfWork, customer_id: str) -> list[LotEntry]:
    """The customer's entries as lot arithmetic needs them, oldest first; entries added through
    the session in this unit are flushed first, so they count."""
    uow.flush()
    return [
        LotEntry(row[0], int(row[1]), row[2], utc_from_driver(row[3]))
        for row in uow.driver(_LOT_ENTRIES, (customer_id,)).fetchall()
    ]


def lot_state(*, uow: UnitOfWork, customer_id: str) -> LotState:
    return compute_lots(lot_entries(uow=uow, customer_id=customer_id))


def ledger_balance(*, uow: UnitOfWork, customer_id: str) -> int:
    """The true balance: the sum of the customer's entries."""
    stmt = select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
        col(LedgerEntry.customer_id) == customer_id
    )
    return int(uow.session.execute(stmt).scalar_one())


# The UPDATE of `apply_to_customer`, on the driver (a commit's hot path): `{floor}` is SQLite's
# two-argument max or PostgreSQL's greatest; the burn check is appended when there is a burn.
_BALANCE = (
    "UPDATE customers SET points_balance = points_balance + ?,"
    " lifetime_spend = {floor}(lifetime_spend + ?, 0) WHERE id = ?{check}"
    " RETURNING points_balance, lifetime_spend"
)


@lru_cache(maxsize=4)
def _balance_update(dialect: str, check_burn: bool) -> str:
    return _BALANCE.format(
        floor="max" if dialect == "sqlite" else "greatest",
        check=" AND points_balance >= ?" if check_burn else "",
    )


def apply_to_customer(
    *,
    uow: UnitOfWork,
    customer_id: str,
    points_delta: int,
    spend_delta: int = 0,
    burn: int = 0,
    keep: int = 0,
) -> tuple[int, int]:
    """Change the cached balance and lifetime spend in one conditional UPDATE (which also locks
    the row on PostgreSQL). With `burn` > 0 the balance must cover it and still hold `keep`
    (the points not spendable yet), checked atomically. Returns (balance, lifetime_spend) after
    the change."""
    stmt = _balance_update(uow.session.get_bind().dialect.name, burn > 0)
    params = (points_delta, spend_delta, customer_id, *((burn + keep,) if burn > 0 else ()))
    row = uow.driver(stmt, params).fetchone()
    if row is None:
        if uow.session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
        raise InsufficientPoints(
            f"the balance no longer covers {burn} points; evaluate the basket again",
            details={"points_to_burn": burn},
        )
    return int(row[0]), int(row[1])


def post_entries(*, uow: UnitOfWork, entries: Sequence[LedgerEntry]) -> None:
    """Insert entries (flushing so their ids exist); zero-point entries are kept only for expiry
    markers, so a lot that expired empty is not looked at again."""
    for entry in entries:
        if entry.points == 0 and entry.kind != EntryKind.EXPIRE.value:
            continue
        uow.session.add(entry)
    uow.session.flush()


def entry_row(
    *,
    customer_id: str,
    kind: EntryKind,
    points: int,
    now: datetime,
    expires_at: datetime | None = None,
    lot_id: int | None = None,
    reverses_id: int | None = None,
    transaction_id: str | None = None,
    refund_id: str | None = None,
    rule_id: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A ledger row for a Core executemany insert (the commit's hot path)."""
    return {
        "customer_id": customer_id,
        "kind": kind.value,
        "points": points,
        "created_at": now,
        "expires_at": expires_at,
        "lot_id": lot_id,
        "expired_lot_id": None,
        "reverses_id": reverses_id,
        "transaction_id": transaction_id,
        "refund_id": refund_id,
        "rule_id": rule_id,
        "note": note,
    }


_ENTRY_COLUMNS = (
    "customer_id",
    "kind",
    "points",
    "created_at",
    "expires_at",
    "lot_id",
    "expired_lot_id",
    "reverses_id",
    "transaction_id",
    "refund_id",
    "rule_id",
    "note",
)
_INSERT_ENTRY = (
    f"INSERT INTO ledger_entries ({', '.join(_ENTRY_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _ENTRY_COLUMNS)})"
)


def insert_entries(*, uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `entry_row` rows in one executemany on the driver (a sale's or a refund's)."""
    uow.driver_many(_INSERT_ENTRY, [[row[c] for c in _ENTRY_COLUMNS] for row in rows])


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    customers: int
    lots: int
    points: int


def expire_points(
    *, new_uow: Callable[[], UnitOfWork], now: datetime, batch: int = 500
) -> ExpiryReport:
    """Post an expiry entry for every lot whose time has come, one write transaction per
    customer so a long run never holds the write lock for long; customers are found `batch` at
    a time until none is left. Safe to run from several processes at once (`expired_lot_id` is
    unique). `new_uow` opens a write unit of work."""
    marker = aliased(LedgerEntry)
    due = (
        select(col(LedgerEntry.customer_id))
        .where(
            col(LedgerEntry.points) > 0,
            col(LedgerEntry.expires_at).is_not(None),
            col(LedgerEntry.expires_at) <= now,
            ~exists().where(col(marker.expired_lot_id) == col(LedgerEntry.id)),
        )
        .distinct()
        .limit(batch)
    )
    seen: set[str] = set()
    total_lots = total_points = 0
    while True:
        with new_uow() as uow:
            customers = [c for c in uow.session.execute(due).scalars() if c not in seen]
        for customer_id in customers:
            with new_uow() as uow:
                lots, points = _expire_customer(uow=uow, customer_id=customer_id, now=now)
            total_lots += lots
            total_points += points
        seen.update(customers)
        if not customers:  # every due lot of the customers found now has its marker
            return ExpiryReport(len(seen), total_lots, total_points)


def _expire_customer(*, uow: UnitOfWork, customer_id: str, now: datetime) -> tuple[int, int]:
    # Lock the customer first (a no-op update) so no sale changes the lots meanwhile.
    apply_to_customer(uow=uow, customer_id=customer_id, points_delta=0)
    entries = customer_entries(uow=uow, customer_id=customer_id)
    done = {e.expired_lot_id for e in entries if e.expired_lot_id is not None}
    state = compute_lots(entries)
    new: list[LedgerEntry] = []
    for lot in state.lots:
        if lot.expires_at is None or lot.expires_at > now or lot.entry_id in done:
            continue
        new.append(
            LedgerEntry(
                customer_id=customer_id,
                kind=EntryKind.EXPIRE.value,
                points=-lot.remaining,
                created_at=now,
                lot_id=lot.entry_id,
                expired_lot_id=lot.entry_id,
                note="срок действия баллов истёк",
            )
        )
    expired = sum(-e.points for e in new)
    post_entries(uow=uow, entries=new)
    if expired:
        apply_to_customer(uow=uow, customer_id=customer_id, points_delta=-expired)
    uow.commit()
    return len(new), expired


@dataclass(frozen=True, slots=True)
class LedgerProblem:
    customer_id: str
    problem: str


def verify_ledger(*, uow: UnitOfWork) -> tuple[int, list[LedgerProblem]]:
    """(customers checked, problems): the cache must equal the sum, and no entry may be
    reversed by more than it was worth."""
    sums = (
        select(col(LedgerEntry.customer_id), func.sum(col(LedgerEntry.points)).label("total"))
        .group_by(col(LedgerEntry.customer_id))
        .subquery()
    )
    rows = uow.session.execute(
        select(
            col(Customer.id), col(Customer.points_balance), func.coalesce(sums.c.total, 0)
        ).outerjoin(sums, sums.c.customer_id == col(Customer.id))
    ).all()
    problems = [
        LedgerProblem(cid, f"cached balance {cached} but the entries sum to {total}")
        for cid, cached, total in rows
        if int(cached) != int(total)
    ]
    original = aliased(LedgerEntry)
    reversed_sums = (
        select(
            col(original.customer_id),
            col(original.id),
            col(original.points),
            func.sum(col(LedgerEntry.points)).label("reversed"),
        )
        .join(original, col(original.id) == col(LedgerEntry.reverses_id))
        .group_by(col(original.customer_id), col(original.id), col(original.points))
    )
    for cid, entry_id, points, reversed_total in uow.session.execute(reversed_sums).all():
        if abs(int(reversed_total)) > abs(int(points)) or int(reversed_total) * int(points) > 0:
            problems.append(
                LedgerProblem(
                    cid, f"entry {entry_id} ({points}) is reversed by {reversed_total} in all"
                )
            )
    return len(rows), problems


def entries_page(
    *, uow: UnitOfWork, customer_id: str, before_id: int | None, limit: int
) -> tuple[list[LedgerEntry], int | None]:
    """Newest first, keyset-paged by id; returns (entries, cursor for the next page)."""
    if uow.session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    stmt = select(LedgerEntry).where(
        col(LedgerEntry.customer_id) == customer_id,
        col(LedgerEntry.points) != 0,
    )
    if before_id is not None:
        stmt = stmt.where(col(LedgerEntry.id) < before_id)
    rows = list(
        uow.session.execute(stmt.order_by(col(LedgerEntry.id).desc()).limit(limit + 1)).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def adjust_points(
    *, uow: UnitOfWork, customer_id: str, points: int, now: datetime, note: str, expire_days: int
) -> int:
    """A manual correction (goodwill credit or debit) as its own entry; returns the balance.
    Credits form a lot like earned points; debits may not take the balance below zero."""
    balance, _ = apply_to_customer(
        uow=uow,
        customer_id=customer_id,
        points_delta=points,
        burn=-points if points < 0 else 0,
    )
    post_entries(
        uow=uow,
        entries=[
            LedgerEntry(
                customer_id=customer_id,
                kind=EntryKind.ADJUST.value,
                points=points,
                created_at=now,
                expires_at=now + timedelta(days=expire_days)
                if points > 0 and expire_days
                else None,
                note=note[:200],
            )
        ],
    )
    return balance
