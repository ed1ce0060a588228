"""Quotes stored by group commit: concurrent evaluations share one transaction and one fsync
(and never hold a PostgreSQL connection each). A quote is durable before its evaluation answers:
whoever submits waits for `done`, so a restart loses no quote a till was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pos_loyalty.sales.group_commit import GroupWriter
from pos_loyalty.sales.service import save_quotes
from pos_loyalty.store import Store

MAX_BATCH = 256


class QuoteWriter(GroupWriter[Mapping[str, Any], None]):
    """`submit(row, done)` queues a `quotes` row (see `sales.service.quote_row`); `done` gets
    None once it is stored, or the error that kept it from being stored."""

    def __init__(self, store: Store) -> None:
        def write(rows: list[Mapping[str, Any]]) -> list[None]:
            save_quotes(store=store, rows=rows)
            return [None] * len(rows)

        super().__init__("quote writer", write, MAX_BATCH)
