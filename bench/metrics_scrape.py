"""A `/metrics` scrape on a store with a long history: the business totals must not read every
row ever written (issue 17). A year of history (default 100,000 ledger entries, 30,000 sales,
20,000 coupons) is bulk-loaded, not timed; then, in the same run:

- the old scrape's query: `store_figures` over all time, as `/metrics` ran it before;
- today's figures, bounded on the indexed `created_at`/`redeemed_at` columns (migration 0033);
- a whole scrape as `/metrics` serves it now (every collector, rendered as Prometheus text).

    .venv/bin/python bench/metrics_scrape.py [--ledger 100000] [--scrapes 30] [--pg]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest
from sqlmodel import SQLModel

from api.metrics import Metrics
from bench.common import Stats, console, results_table, throwaway_database, write_config
from pos_loyalty.lanes import LaneHub
from pos_loyalty.reports.figures import local_day, store_figures
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

DAYS = 365
CUSTOMERS = 1000


def _load(store: Store, ledger: int, now: datetime) -> None:
    """A year of rows, spread evenly over the days before `now` (today holds 1/365 of them)."""
    tables = SQLModel.metadata.tables
    rng = random.Random(7)

    def moment() -> datetime:
        return now - timedelta(seconds=rng.randrange(DAYS * 86400))

    customers = [uuid.uuid4().hex for _ in range(CUSTOMERS)]
    sales = ledger * 3 // 10
    with store.engine.begin() as conn:
        conn.execute(
            tables["customers"].insert(),
            [
                {"id": c, "name": "Покупатель", "phone_hash": c, "phone_masked": "+7 ***",
                 "consents": {}, "created_at": now - timedelta(days=DAYS)}
                for c in customers
            ],
        )  # fmt: skip
        conn.execute(
            tables["transactions"].insert(),
            [
                {"id": uuid.uuid4().hex, "store_id": "bench-001", "rules_version": "v",
                 "currency": "RUB", "subtotal": 50_000, "discount_total": 1_000, "total": 49_000,
                 "stamps": {}, "result": {}, "created_at": moment()}
                for _ in range(sales)
            ],
        )  # fmt: skip
        conn.execute(
            tables["ledger_entries"].insert(),
            [
                {"customer_id": rng.choice(customers), "kind": "earn" if n % 4 else "burn",
                 "points": 25 if n % 4 else -10, "created_at": moment(), "note": ""}
                for n in range(ledger)
            ],
        )  # fmt: skip
        coupons = []
        for n in range(ledger // 5):
            issued = moment()
            redeemed = issued + timedelta(days=3) if n % 3 == 0 else None
            coupons.append(
                {"code": f"{n:011d}", "label": "70 ₽", "amount_off": 7000, "skus": [],
                 "categories": [], "valid_from": issued, "expires_at": issued + timedelta(14),
                 "created_at": issued, "redeemed_at": redeemed if redeemed and redeemed < now
                 else None}
            )  # fmt: skip
        conn.execute(tables["coupons"].insert(), coupons)


def _time(work: Callable[[], Any], scrapes: int) -> Stats:
    work()  # warm: the page cache and the statement cache, as a running service has them
    seconds = []
    for _ in range(scrapes):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return Stats.of(seconds)


def run(kind: str, ledger: int, scrapes: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(kind, Path(tmp)) as url:
        settings = load_settings(write_config(Path(tmp), url))
        store = Store.open(settings)
        try:
            upgrade(store.engine)
            now = store.now()
            _load(store, ledger, now)
            since, until = local_day(now, settings.store.tz)
            metrics = Metrics()
            metrics.watch(store=store, hub=LaneHub(store))

            def all_time() -> Any:
                with store.uow() as uow:
                    return store_figures(uow=uow)

            def today() -> Any:
                with store.uow() as uow:
                    return store_figures(uow=uow, since=since, until=until)

            figures = {
                "old scrape query (all time)": _time(all_time, scrapes),
                "today's figures (indexed)": _time(today, scrapes),
                "whole /metrics scrape now": _time(
                    lambda: generate_latest(metrics.registry), scrapes
                ),
            }
        finally:
            store.close()
    base = figures["old scrape query (all time)"].median_ms
    return [
        [kind, name, f"{s.median_ms:.2f}", f"{s.p99_ms:.2f}", f"{s.median_ms / base:.3f}"]
        for name, s in figures.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    rows = []
    for kind in ("sqlite", "pg") if args.pg else ("sqlite",):
        console.print(f"{kind}: loading {args.ledger} ledger entries …")
        rows += run(kind, args.ledger, args.scrapes)
    results_table(
        f"/metrics business totals, {args.ledger} ledger entries over {DAYS} days",
        ["database", "what", "median ms", "p99 ms", "÷ old"],
        rows,
    )


if __name__ == "__main__":
    main()
