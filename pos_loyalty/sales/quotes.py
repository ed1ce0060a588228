"""Quotes stored by group commit: one writer thread inserts what concurrent evaluations handed it
in one transaction, so eight tills share one fsync and never queue one by one for SQLite's write
lock (or hold a PostgreSQL connection each). A quote is durable before its evaluation answers:
whoever submits waits for `done`, so a restart loses no quote a till was given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pos_loyalty.sales.service import save_quotes
from pos_loyalty.store import Store

log = logging.getLogger(__name__)

# Called from the writer thread once the quote is committed (None) or could not be (the error).
QuoteDone = Callable[[BaseException | None], None]
MAX_BATCH = 256


class QuoteWriter:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._pending: list[tuple[Mapping[str, Any], QuoteDone]] = []
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, row: Mapping[str, Any], done: QuoteDone) -> None:
        """Queue a `quotes` row (see `sales.service.quote_row`); `done` says when it is stored."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the quote writer is closed")
            self._pending.append((row, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="quote-writer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return  # closed and drained
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
            error: BaseException | None = None
            try:
                save_quotes(store=self._store, rows=[row for row, _ in batch])
            except Exception as exc:  # every waiter gets the error; the writer carries on
                log.warning("could not store %d quotes: %s", len(batch), exc)
                error = exc
            for _, done in batch:
                try:
                    done(error)
                except Exception:
                    log.exception("a quote waiter failed")
