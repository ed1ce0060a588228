"""Counters a rule's limits are checked against at commit, inside the sale's transaction:
promo-code uses (per code, per customer) and budgets. One row per (rule, key); an increment is a
conditional UPDATE (`value < cap`), which on PostgreSQL also locks the row, so concurrent tills
queue on it and a cap is never passed by more than the last sale's amount.

Each sale's additions are kept (`CounterUse`) so its refund gives them back: a money or points
amount in proportion to what is refunded, a use (of a code, of a budget) when the whole sale is.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import BigInteger
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select

from pos_loyalty.money import cumulative_slice
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import UTCDateTime, utcnow


class RuleCounter(SQLModel, table=True):
    __tablename__ = "rule_counters"

    rule_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=160)  # e.g. "code:ЛЕТО25", "code:ЛЕТО25:<cid>"
    value: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CounterUse(SQLModel, table=True):
    """What one sale added to one counter, and how much of it refunds gave back."""

    __tablename__ = "rule_counter_uses"

    transaction_id: str = Field(primary_key=True, max_length=32)
    rule_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=160)
    amount: int = Field(sa_type=BigInteger)
    in_proportion: bool  # an amount (given back with each refund's share), else a use
    returned: int = Field(default=0, sa_type=BigInteger)


def counter_values(*, uow: UnitOfWork, rule_id: str, keys: list[str]) -> dict[str, int]:
    """The current values of `keys` (absent ones are 0)."""
    rows = uow.session.exec(
        select(RuleCounter.key, RuleCounter.value).where(
            col(RuleCounter.rule_id) == rule_id, col(RuleCounter.key).in_(keys)
        )
    )
    found = {key: int(value) for key, value in rows}
    return {key: found.get(key, 0) for key in keys}


def add_within_cap(
    *,
    uow: UnitOfWork,
    rule_id: str,
    key: str,
    amount: int,
    cap: int,
    now: datetime,
    transaction_id: str,
    in_proportion: bool = False,
) -> bool:
    """Add the sale's `amount` if the counter is still below `cap` (0: no cap), and keep what
    was added for the sale's refund; False when the cap is reached."""
    conn = uow.session.connection()
    table = RuleCounter.__table__  # type: ignore[attr-defined]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(table)
        .values(rule_id=rule_id, key=key, value=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    stmt = (
        sa.update(table)
        .where(table.c.rule_id == rule_id, table.c.key == key)
        .values(value=table.c.value + amount, updated_at=now)
    )
    if cap:
        stmt = stmt.where(table.c.value < cap)
    if conn.execute(stmt).rowcount != 1:
        return False
    uow.session.add(
        CounterUse(
            transaction_id=transaction_id,
            rule_id=rule_id,
            key=key,
            amount=amount,
            in_proportion=in_proportion,
        )
    )
    return True


def give_back(
    *, uow: UnitOfWork, transaction_id: str, before: int, after: int, whole: int, now: datetime
) -> None:
    """A refund taking the sale from `before`/`whole` to `after`/`whole` refunded: each amount
    the sale added goes back by that share (the shares of successive refunds add up to the
    amount), each use when `after` reaches `whole`. Counters never go below zero."""
    table = RuleCounter.__table__  # type: ignore[attr-defined]
    uses = uow.session.exec(
        select(CounterUse).where(col(CounterUse.transaction_id) == transaction_id)
    ).all()
    for use in uses:
        if use.in_proportion and whole > 0:
            back = cumulative_slice(use.amount, before, after, whole)
        else:
            back = use.amount if after >= whole else 0
        back = min(back, use.amount - use.returned)
        if back <= 0:
            continue
        use.returned += back
        uow.session.add(use)
        uow.session.connection().execute(
            sa.update(table)
            .where(table.c.rule_id == use.rule_id, table.c.key == use.key)
            .values(
                value=sa.case((table.c.value > back, table.c.value - back), else_=0),
                updated_at=now,
            )
        )
