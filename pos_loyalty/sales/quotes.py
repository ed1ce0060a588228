"""Quotes the till may commit by id for 15 minutes: the row evaluate keeps, its group-commit
writer, and the check at commit that it is still good.

Quotes are stored by group commit: concurrent evaluations share one transaction and one fsync
(and never hold a PostgreSQL connection each). A quote is durable before its evaluation answers:
whoever submits waits for `done`, so a restart loses no quote a till was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Select

from pos_loyalty.errors import Conflict
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.sales.group_commit import GroupWriter
from pos_loyalty.sales.models import SaleTransaction, StoredQuote
from pos_loyalty.sales.pricing import QUOTE_TTL, Priced, basket_request_json
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import table_of
from pos_loyalty.storage.engine import json_dumps
from pos_loyalty.store import Store

MAX_BATCH = 256


class QuoteStale(Conflict):
    code = "quote_stale"


def quote_row(*, basket: BasketIn, priced: Priced, now: datetime) -> dict[str, Any]:
    """The `quotes` row that lets the till commit this quote by id for 15 minutes."""
    return {
        "id": priced.quote_id,
        "created_at": now,
        "expires_at": now + QUOTE_TTL,
        "rules_version": priced.result["rules_version"],
        "customer_id": priced.customer_id,
        "lane_id": basket.lane_id,
        "request": basket_request_json(basket),
        "result": priced.stored(),
    }


_COLUMNS = "id, created_at, expires_at, rules_version, customer_id, lane_id, request, result"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"


@lru_cache(maxsize=MAX_BATCH)
def _insert(rows: int) -> str:
    """One INSERT of `rows` rows: one statement for the batch on either database (psycopg's
    executemany sends a statement per row)."""
    return f"INSERT INTO quotes ({_COLUMNS}) VALUES " + ", ".join([_ROW] * rows)


def save_quotes(*, store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert quote rows in one transaction (one fsync however many there are), on the driver:
    through Core, the batch cost the service more CPU than pricing the basket did."""
    if not rows:
        return
    params: list[Any] = []
    for row in rows:
        params += (
            row["id"],
            row["created_at"],
            row["expires_at"],
            row["rules_version"],
            row["customer_id"],
            row["lane_id"],
            json_dumps(row["request"]),
            json_dumps(row["result"]),
        )
    with store.uow(write=True) as uow:
        uow.driver(_insert(len(rows)), params)
        uow.commit()


class QuoteWriter(GroupWriter[Mapping[str, Any], None]):
    """`submit(row, done)` queues a `quotes` row (see `quote_row`); `done` gets
    None once it is stored, or the error that kept it from being stored."""

    def __init__(self, store: Store) -> None:
        def write(rows: list[Mapping[str, Any]]) -> list[None]:
            save_quotes(store=store, rows=rows)
            return [None] * len(rows)

        super().__init__("quote writer", write, MAX_BATCH)


@lru_cache(maxsize=1)
def _quote_query() -> Select[Any]:
    """The stored quote `:quote_id` and the sale that already committed it, if any."""
    quotes, sales = table_of(StoredQuote), table_of(SaleTransaction)
    committed = sa.select(sales.c.id).where(sales.c.quote_id == quotes.c.id).scalar_subquery()
    return sa.select(
        quotes.c.expires_at,
        quotes.c.rules_version,
        quotes.c.customer_id,
        quotes.c.lane_id,
        quotes.c.result,
        committed.label("committed_as"),
    ).where(quotes.c.id == sa.bindparam("quote_id"))


@dataclass(frozen=True, slots=True)
class QuoteToCommit:
    """A stored quote a commit takes: typed as it was priced, and the lane it was priced for."""

    priced: Priced
    lane_id: str | None


def load_quote(
    *, uow: UnitOfWork, store: Store, quote_id: str, now: datetime, rules: CompiledRules
) -> QuoteToCommit:
    """The quote a commit names, refused when unknown, expired, priced under other rules than
    `rules` (the program the commit runs under) or already committed."""
    stored = uow.session.connection().execute(_quote_query(), {"quote_id": quote_id}).first()
    if stored is None:
        raise QuoteStale(
            "this quote is unknown or was cleaned up; evaluate the basket again",
            details={"quote_id": quote_id, "reason": "unknown"},
        )
    if stored.expires_at <= now:
        raise QuoteStale(
            "this quote expired; evaluate the basket again",
            details={"quote_id": quote_id, "reason": "expired"},
        )
    if stored.rules_version != rules.version:
        raise QuoteStale(
            "the rules changed since this quote; evaluate the basket again",
            details={"quote_id": quote_id, "reason": "rules_changed"},
        )
    if stored.committed_as is not None:
        raise Conflict(
            "this quote was already committed as another sale",
            code="quote_already_committed",
            details={"transaction_id": stored.committed_as},
        )
    priced = Priced.from_stored(
        quote_id=quote_id, customer_id=stored.customer_id, stored=stored.result
    )
    return QuoteToCommit(priced, stored.lane_id)
