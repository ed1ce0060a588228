"""Counters a rule's limits are checked against at commit, inside the sale's transaction:
promo-code uses (per code, per customer) and, later, budgets. One row per (rule, key); an
increment is a conditional UPDATE (`value < cap`), which on PostgreSQL also locks the row, so
concurrent tills queue on it and a cap is never passed by more than the last sale's amount."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import BigInteger
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select

from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import UTCDateTime, utcnow


class RuleCounter(SQLModel, table=True):
    __tablename__ = "rule_counters"

    rule_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=160)  # e.g. "code:ЛЕТО25", "code:ЛЕТО25:<cid>"
    value: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


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
    *, uow: UnitOfWork, rule_id: str, key: str, amount: int, cap: int, now: datetime
) -> bool:
    """Add `amount` if the counter is still below `cap` (0: no cap); False when it is not."""
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
    return conn.execute(stmt).rowcount == 1
