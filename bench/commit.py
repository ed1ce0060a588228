"""Commits through HTTP with 8 concurrent tills, `serve` against the floor (`bench/floor.py`) in
the same run, on SQLite and on PostgreSQL.

Each commit is a full basket (3 lines, an identified customer, points earned, sometimes a coupon
issued) priced afresh and written in one database transaction with its idempotency record,
ledger entries and receipt outbox row; the floor does the same in a raw ASGI app on the raw
driver (one transaction per sale, SQLite `synchronous=FULL`). The raw rate of single-row
INSERT+COMMIT is printed too (the durability floor). Targets (issue 18): `serve`'s CPU per
request ≤ 3 × the floor's on both databases; p99 ≤ 30 ms on SQLite.

    .venv/bin/python bench/commit.py [--per-client 250] [--backends sqlite,pg] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import (
    console,
    pg_server_url,
    results_table,
    throwaway_database,
    write_config,
)
from bench.sale_load import (
    CLIENT,
    COMPARISON_COLUMNS,
    Call,
    machine_note,
    rules_toml,
    serve_against_floor,
)
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.customers.service import enrol_customer
from pos_loyalty.security import hash_api_key
from pos_loyalty.settings import load_settings
from pos_loyalty.storage import make_engine
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

TARGET_P99_SQLITE_MS = 30.0
TARGET_CPU_RATIO = 3.0
RULES = {
    "points": {"point_value_minor": 100, "redeem_max_percent": 30, "expire_days": 365},
    "rules": [
        {"id": "bonus-5", "kind": "points", "label": "Бонусы 5%", "earn_percent": 5},
        {
            "id": "spend-700-get-70",
            "kind": "threshold",
            "label": "700 ₽ — купон 70 ₽",
            "min_subtotal": 70000,
            "reward": {"coupon": {"amount_off": 7000, "valid_days": 14}},
        },
        {
            "id": "milk-10",
            "kind": "discount",
            "label": "Молоко −10%",
            "percent": 10,
            "applies_to": "lines",
            "when": {"categories": ["dairy"]},
        },
    ],
}


def raw_insert_rate(url: str, seconds: float = 2.0) -> float:
    """Single-row INSERT + COMMIT in a loop on one connection, with the same durability."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_raw (id VARCHAR(32), n INTEGER)"))
    count, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    with engine.connect() as conn:
        while time.perf_counter() < deadline:
            conn.execute(
                text("INSERT INTO bench_raw VALUES (:id, :n)"), {"id": uuid.uuid4().hex, "n": count}
            )
            conn.commit()
            count += 1
    rate = count / (time.perf_counter() - started)
    engine.dispose()
    return rate


def run_backend(kind: str, per_client: int, rounds: int, rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(kind, Path(tmp)) as url:
        config = write_config(Path(tmp), url, rules_toml(RULES))
        settings = load_settings(config, environ={})
        store = Store.open(settings)
        upgrade(store.engine)
        with store.uow(write=True) as uow:
            key = create_key(uow=uow, scope=Scope.TILL)
        customers = []
        for i in range(200):
            with store.uow(write=True) as uow:
                customers.append(
                    enrol_customer(
                        uow=uow,
                        settings=settings,
                        secret=store.secret,
                        phone=f"+7916{i:07d}",
                        name=f"Покупатель {i}",
                    ).id
                )
        store.close()
        raw = raw_insert_rate(url)

        def commit(till: int, i: int) -> Call:
            body = {
                "store_id": "bench-001",
                "lane_id": f"lane-{till}",
                "customer": {"id": customers[(till * 7919 + i) % len(customers)]},
                "lines": [
                    {
                        "sku": "4601234567890",
                        "name": "Молоко 1л",
                        "category": "dairy",
                        "qty": 2,
                        "unit_price": 8990,
                    },
                    {
                        "sku": "4600000000001",
                        "name": "Хлеб",
                        "category": "bakery",
                        "qty": 1,
                        "unit_price": 5490,
                    },
                    {
                        "sku": "4600000000002",
                        "name": "Сыр",
                        "category": "cheese",
                        "qty": 1,
                        "unit_price": 45000 + (i % 5) * 10000,
                    },
                ],
            }
            return Call(
                "POST",
                "/v1/transactions",
                json.dumps(body, ensure_ascii=False).encode(),
                (("Idempotency-Key", uuid.uuid4().hex),),
            )

        serve_against_floor(
            kind=kind,
            config=config,
            key=key,
            key_hash=hash_api_key(key),
            request=commit,
            per_client=per_client,
            rounds=rounds,
            cpu_target=TARGET_CPU_RATIO,
            p99_target=TARGET_P99_SQLITE_MS if kind == "sqlite" else None,
            rows=rows,
        )
        rows.append([kind, "raw INSERT+COMMIT", f"{raw:,.0f}", "", "", "", "", "", ""])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-client", type=int, default=250)
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rows: list[list[str]] = []
    for kind in args.backends.split(","):
        if kind == "pg" and pg_server_url() is None:
            console.print("[yellow]PostgreSQL: no server answers; skipped[/]")
            continue
        run_backend(kind, args.per_client, args.rounds, rows)
    results_table(
        "commit through HTTP, 8 concurrent tills; serve vs the floor",
        COMPARISON_COLUMNS,
        rows,
    )
    console.print(f"client: {CLIENT}; machine: {machine_note()}")


if __name__ == "__main__":
    main()
