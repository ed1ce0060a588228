"""Periodic work for `serve`: expire points and coupons, drop old quotes and idempotency records.

A context manager running a daemon thread; every step is safe to run from several processes at
once (unique expiry markers, conditional updates), so each API worker may run its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from pos_loyalty.coupons.service import expire_coupons
from pos_loyalty.ledger.service import expire_points
from pos_loyalty.sales.idempotency import IDEMPOTENCY_RETENTION
from pos_loyalty.sales.models import IdempotencyRecord, StoredQuote
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

log = logging.getLogger("pos_loyalty.housekeeping")
DEFAULT_INTERVAL_S = 3600.0
QUOTE_RETENTION = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    customers: int
    lots_expired: int
    points_expired: int
    coupons_expired: int
    quotes_purged: int
    idempotency_purged: int


def purge_old_records(*, uow: UnitOfWork, now: datetime) -> tuple[int, int]:
    """Drop expired quotes (after a day) and idempotency records (after a week)."""
    quotes: Any = uow.session.execute(
        delete(StoredQuote).where(col(StoredQuote.expires_at) < now - QUOTE_RETENTION)
    )
    keys: Any = uow.session.execute(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.created_at) < now - IDEMPOTENCY_RETENTION
        )
    )
    return int(quotes.rowcount or 0), int(keys.rowcount or 0)


def run_housekeeping(store: Store) -> HousekeepingReport:
    """One pass: what `pos-loyalty points expire` does, plus the clean-up of old records."""
    now = store.now()
    points = expire_points(new_uow=lambda: store.uow(write=True), now=now)
    with store.uow(write=True) as uow:
        coupons = expire_coupons(uow=uow, now=now)
        quotes, keys = purge_old_records(uow=uow, now=now)
        uow.commit()
    return HousekeepingReport(points.customers, points.lots, points.points, coupons, quotes, keys)


class Housekeeping:
    """`with Housekeeping(store): ...` runs `run_housekeeping` at start and every interval."""

    def __init__(self, store: Store, *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = run_housekeeping(self.store)
                if report.lots_expired or report.coupons_expired:
                    log.info(
                        "expired %d points in %d lots, %d coupons",
                        report.points_expired,
                        report.lots_expired,
                        report.coupons_expired,
                    )
            except Exception:  # the next pass retries; nothing half-written (one tx per step)
                log.exception("housekeeping pass failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Housekeeping:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
