"""Stamp-card counters: a sale advances them, a refund takes its units back."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import update

from pos_loyalty.sales.models import StampCounter
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import insert_into, table_of


@lru_cache(maxsize=1)
def _stamps_update() -> sa.Update:
    """count = max(0, count + :units), in SQL both dialects speak."""
    counters = table_of(StampCounter)
    added = counters.c.count + sa.bindparam("units")
    return (
        update(counters)
        .where(
            counters.c.customer_id == sa.bindparam("customer"),
            counters.c.rule_id == sa.bindparam("rule"),
        )
        .values(count=sa.case((added < 0, 0), else_=added), updated_at=sa.bindparam("now"))
    )


def add_stamps(uow: UnitOfWork, customer_id: str, rule_id: str, units: int, now: datetime) -> None:
    """Move a stamp counter by `units` (a sale adds, a refund takes back; never below 0): an
    UPDATE, or the first INSERT. The customer row is locked by now (PostgreSQL) and SQLite
    writes one at a time, so the pair cannot race."""
    conn = uow.session.connection()
    params = {"customer": customer_id, "rule": rule_id, "units": units, "now": now}
    if conn.execute(_stamps_update(), params).rowcount == 0:
        conn.execute(
            insert_into(StampCounter),
            {
                "customer_id": customer_id,
                "rule_id": rule_id,
                "count": max(0, units),
                "updated_at": now,
            },
        )
