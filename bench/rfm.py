"""RFM over 100,000 customers and 1,000,000 transactions, on SQLite and PostgreSQL.

The history is bulk-loaded straight into the tables (executemany on SQLite, COPY on PostgreSQL;
not timed), then `compute_rfm` (one INSERT … SELECT with ntile window functions) is timed.
Targets: ≤ 20 s on SQLite, ≤ 10 s on PostgreSQL. In the same run: loading one customer's
purchase history for the personal offers (what every evaluate of an identified customer pays),
for a typical and a heavy customer, on the first evaluate and on re-evaluates (the till prices
the basket again at every scanned line); target median ≤ 5 ms.

    .venv/bin/python bench/rfm.py [--customers 100000] [--transactions 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stats, console, pg_server_url, results_table, throwaway_database, verdict
from pos_loyalty.rules import RulesConfig, compile_rules
from pos_loyalty.segments.models import SegmentsConfig
from pos_loyalty.segments.service import HistoryCache, compute_rfm, load_customer_history
from pos_loyalty.storage import UnitOfWork, make_engine
from pos_loyalty.storage.migrate import upgrade

TARGET_S = {"sqlite": 20.0, "pg": 10.0}
TARGET_HISTORY_MS = 5.0
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 730

CUSTOMER_COLUMNS = (
    "id",
    "name",
    "phone_hash",
    "phone_e164",
    "phone_masked",
    "birthday",
    "consents",
    "lifetime_spend",
    "points_balance",
    "created_at",
)
SALE_COLUMNS = (
    "id",
    "store_id",
    "lane_id",
    "customer_id",
    "quote_id",
    "rules_version",
    "currency",
    "subtotal",
    "discount_total",
    "burn_value",
    "total",
    "points_earned",
    "points_burned",
    "payment_method",
    "paid",
    "change",
    "status",
    "refunded_amount",
    "stamps",
    "result",
    "created_at",
)
LINE_COLUMNS = (
    "transaction_id",
    "position",
    "sku",
    "name",
    "category",
    "qty_milli",
    "unit_price",
    "subtotal",
    "discount",
    "burn",
    "total",
    "stamps",
)
PERSONAL_RULES = RulesConfig.from_dict(
    {
        "rules": [
            {
                "id": "fav",
                "kind": "personal",
                "label": "Любимое",
                "trigger": "favourite",
                "percent_off": 10,
            },
            {
                "id": "rep",
                "kind": "personal",
                "label": "Пора пополнить",
                "trigger": "replenish",
                "amount_off": 10_000,
            },
            {
                "id": "cross",
                "kind": "personal",
                "label": "К покупке",
                "trigger": "cross_sell",
                "percent_off": 15,
                "if_bought": ["camera"],
                "offer": ["lens"],
            },
            {
                "id": "back",
                "kind": "personal",
                "label": "С возвращением",
                "trigger": "winback",
                "amount_off": 20_000,
            },
        ]
    }
)


def _stamp(moment: datetime, kind: str) -> Any:
    """How the column type stores an instant: naive UTC text on SQLite, aware on PostgreSQL."""
    if kind == "sqlite":
        return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def customers(count: int, kind: str) -> Iterator[tuple[Any, ...]]:
    created = _stamp(NOW - timedelta(days=HISTORY_DAYS + 10), kind)
    for i in range(count):
        consents = '{"sms": true}' if i % 3 else "{}"
        yield (
            f"c{i:07d}",
            "Иван Петров",
            uuid.uuid4().hex,
            None,
            "+7 *** ***-45-67",
            None,
            consents,
            0,
            0,
            created,
        )


def sales(
    count: int, customer_count: int, kind: str, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """Transactions over two years; a few customers buy often, most rarely (Pareto weights)."""
    weights = [rng.paretovariate(1.2) for _ in range(customer_count)]
    owners = rng.choices(range(customer_count), weights=weights, k=count)
    span = HISTORY_DAYS * 86_400
    for owner in owners:
        at = NOW - timedelta(seconds=rng.randrange(span))
        total = rng.randrange(5_000, 500_000)
        yield (
            uuid.uuid4().hex,
            "msk-001",
            "lane-1",
            f"c{owner:07d}",
            None,
            "bench",
            "RUB",
            total,
            0,
            0,
            total,
            0,
            0,
            None,
            None,
            0,
            "completed",
            0,
            "{}",
            "{}",
            _stamp(at, kind),
        )


def heavy_histories(
    kind: str, rng: random.Random, customers_with: dict[str, int]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Sales with 12 lines each for a few customers (others' sales carry no lines)."""
    sale_rows, line_rows = [], []
    skus = [(f"sku-{n:04d}", f"cat-{n % 40:02d}") for n in range(400)]
    for customer_id, count in customers_with.items():
        for _ in range(count):
            sale_id = uuid.uuid4().hex
            at = NOW - timedelta(seconds=rng.randrange(365 * 86_400))
            total = 0
            for position in range(12):
                sku, category = skus[rng.randrange(len(skus))]
                price = rng.randrange(5_000, 50_000)
                total += price
                line_rows.append(
                    (
                        sale_id,
                        position,
                        sku,
                        f"Товар {sku}",
                        category,
                        1000,
                        price,
                        price,
                        0,
                        0,
                        price,
                        "{}",
                    )
                )
            sale_rows.append(
                (
                    sale_id,
                    "msk-001",
                    "lane-1",
                    customer_id,
                    None,
                    "bench",
                    "RUB",
                    total,
                    0,
                    0,
                    total,
                    0,
                    0,
                    None,
                    None,
                    0,
                    "completed",
                    0,
                    "{}",
                    "{}",
                    _stamp(at, kind),
                )
            )
    return sale_rows, line_rows


def bulk_insert(engine: Any, kind: str, table: str, columns: tuple[str, ...], rows: Any) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        if kind == "sqlite":
            marks = ", ".join("?" for _ in columns)
            cursor.execute("BEGIN")
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                    batch.clear()
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
            cursor.execute("COMMIT")
        else:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
    finally:
        raw.close()


def run(kind: str, args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    rng = random.Random(20261101)
    with throwaway_database(kind, workdir) as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        bulk_insert(engine, kind, "customers", CUSTOMER_COLUMNS, customers(args.customers, kind))
        bulk_insert(
            engine,
            kind,
            "transactions",
            SALE_COLUMNS,
            sales(args.transactions, args.customers, kind, rng),
        )
        heavy = {f"c{i:07d}": 150 for i in range(10)} | {f"c{i:07d}": 12 for i in range(10, 30)}
        extra_sales, lines = heavy_histories(kind, rng, heavy)
        bulk_insert(engine, kind, "transactions", SALE_COLUMNS, extra_sales)
        bulk_insert(engine, kind, "transaction_lines", LINE_COLUMNS, lines)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        load_s = time.perf_counter() - started
        console.print(
            f"{kind}: loaded {args.customers:,} customers, "
            f"{args.transactions + len(extra_sales):,} transactions in {load_s:.1f} s"
        )

        times = []
        summary = None
        for _ in range(args.runs):
            started = time.perf_counter()
            with UnitOfWork(engine, write=True) as uow:
                summary = compute_rfm(uow=uow, config=SegmentsConfig(), now=NOW)
            times.append(time.perf_counter() - started)
        assert summary is not None
        counts = ", ".join(f"{s.name} {s.customers}" for s in summary.segments)
        console.print(f"{kind}: {summary.scored:,} scored — {counts}")

        rules = compile_rules(PERSONAL_RULES)
        history_stats = {}
        for label, ids in (
            ("typical customer (12 sales × 12 lines)", [f"c{i:07d}" for i in range(10, 30)]),
            ("heavy customer (150 sales × 12 lines)", [f"c{i:07d}" for i in range(10)]),
        ):
            for cache_label, cache in (
                ("first evaluate", None),
                ("re-evaluate (cached)", HistoryCache()),
            ):
                samples = []
                with UnitOfWork(engine) as uow:
                    for round_ in range(args.history_rounds + len(ids)):
                        customer_id = ids[round_ % len(ids)]
                        started = time.perf_counter()
                        history = load_customer_history(
                            session=uow.session,
                            customer_id=customer_id,
                            rules=rules,
                            now=NOW,
                            tz=UTC,
                            cache=cache,
                        )
                        if round_ >= len(ids):  # the cache is warm for every customer by now
                            samples.append(time.perf_counter() - started)
                        assert history is not None and history.skus
                history_stats[f"{label}, {cache_label}"] = Stats.of(samples)
        engine.dispose()

    median = sorted(times)[len(times) // 2]
    rows = [
        [
            f"{kind}: RFM, {args.customers:,} customers / {args.transactions:,} sales",
            f"{median:.2f} s (best {min(times):.2f}, worst {max(times):.2f})",
            f"≤ {TARGET_S[kind]:.0f} s",
            verdict(median <= TARGET_S[kind]),
        ]
    ]
    for label, stats in history_stats.items():
        rows.append(
            [
                f"{kind}: history load, {label}",
                f"median {stats.median_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms",
                f"median ≤ {TARGET_HISTORY_MS:.0f} ms",
                verdict(stats.median_ms <= TARGET_HISTORY_MS),
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--history-rounds", type=int, default=300)
    parser.add_argument("--only", choices=["sqlite", "pg"], default=None)
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["sqlite", "pg"]
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rfm-") as tmp:
        for kind in kinds:
            if kind == "pg" and pg_server_url() is None:
                rows.append(["pg", "skipped: no PostgreSQL server answers", "≤ 10 s", "—"])
                continue
            rows.extend(run(kind, args, Path(tmp)))
    results_table("RFM segments and purchase history", ["measure", "result", "target", ""], rows)


if __name__ == "__main__":
    main()
