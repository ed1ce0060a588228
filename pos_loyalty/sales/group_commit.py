"""Group commit: one writer thread does in one transaction what concurrent requests handed it,
so eight tills share one fsync and never queue one by one for SQLite's write lock.

Whoever submits an item waits for its `done` callback, which the writer calls only once the
transaction holding the item is committed (or has failed): an answer a till was given survives
a crash the next moment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Called on the writer thread with the item's result, or with the error that failed its batch.
Done = Callable[[Result | BaseException], None]


class GroupWriter(Generic[Item, Result]):
    """Batches of at most `max_batch` items go to `write`, which returns one result per item,
    an error for an item that failed on its own (or raises: then every item of the batch gets
    the error). The thread starts on the first item; `close` writes what is queued, then stops."""

    def __init__(
        self,
        name: str,
        write: Callable[[list[Item]], Sequence[Result | BaseException]],
        max_batch: int,
    ) -> None:
        self._name = name
        self._write = write
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._pending: list[tuple[Item, Done[Result]]] = []
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, item: Item, done: Done[Result]) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"the {self._name} is closed")
            self._pending.append((item, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop (idempotent)."""
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
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            results: Sequence[Result | BaseException]
            try:
                results = self._write([item for item, _ in batch])
            except Exception as exc:  # every waiter gets the error; the writer carries on
                log.warning("%s: a batch of %d failed: %s", self._name, len(batch), exc)
                results = [exc] * len(batch)
            for (_, done), result in zip(batch, results, strict=True):
                try:
                    done(result)
                except Exception:
                    log.exception("%s: a waiter failed", self._name)
