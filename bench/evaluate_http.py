"""HTTP evaluate through uvicorn: 8 concurrent tills post a 30-line basket under 200 active rules
(an identified gold customer, points to burn), next to a bare /healthz on the same server.

Each request resolves the customer, reads stamp counters, prices the basket and stores the quote
(a durable write). Targets (issue 3): p99 ≤ 10 ms, throughput ≥ 0.5 × bare /healthz.
The server's CPU time per request (all its threads) is printed beside each.

    .venv/bin/python bench/evaluate_http.py [--per-client 250] [--backends sqlite,pg]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from bench.common import (
    console,
    pg_server_url,
    results_table,
    running_server,
    throwaway_database,
    verdict,
    write_config,
)
from bench.evaluate import bench_basket, bench_rules
from bench.sale_load import CLIENT, Call, concurrent, cpu_ms, machine_note, rules_toml
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.customers.models import Customer
from pos_loyalty.customers.service import enrol_customer
from pos_loyalty.money import qty_to_json
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

TARGET_P99_MS = 10.0
TARGET_RATIO = 0.5


def basket_body(customer_id: str) -> dict[str, Any]:
    basket = bench_basket()
    return {
        "store_id": "bench-001",
        "lane_id": "lane-1",
        "customer": {"id": customer_id},
        "lines": [
            {
                "sku": ln.sku,
                "name": ln.name,
                "category": ln.category,
                "qty": qty_to_json(ln.qty),
                "unit_price": ln.unit_price,
            }
            for ln in basket.lines
        ],
        "points_to_redeem": basket.points_to_redeem,
    }


def run_backend(kind: str, per_client: int, rows: list[list[str]]) -> None:
    section = bench_rules().model_dump(mode="python", by_alias=True, exclude_none=True)
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(kind, Path(tmp)) as url:
        config = write_config(Path(tmp), url, rules_toml(section))
        settings = load_settings(config, environ={})
        store = Store.open(settings)
        upgrade(store.engine)
        with store.uow(write=True) as uow:
            key = create_key(uow=uow, scope=Scope.TILL)
        with store.uow(write=True) as uow:
            customer_id = enrol_customer(
                uow=uow, settings=settings, secret=store.secret, phone="+79161234567", name="А Б"
            ).id
        with store.uow(write=True) as uow:
            uow.session.execute(
                update(Customer).values(lifetime_spend=3_500_000, points_balance=1_000)
            )
            uow.commit()
        store.close()
        body = json.dumps(basket_body(customer_id), ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {key}"}
        healthz_call = Call("GET", "/healthz")
        evaluate_call = Call("POST", "/v1/baskets/evaluate", body)

        def healthz(till: int, i: int) -> Call:
            return healthz_call

        def evaluate(till: int, i: int) -> Call:
            return evaluate_call

        with running_server(config) as base:
            floor = concurrent(base, headers, healthz, per_client=per_client * 2)
            quotes = concurrent(base, headers, evaluate, per_client=per_client)
        ratio = quotes.per_second / floor.per_second
        rows.append(
            [
                kind,
                "bare /healthz",
                f"{floor.per_second:,.0f}",
                f"{floor.stats.median_ms:.2f}",
                f"{floor.stats.p99_ms:.2f}",
                cpu_ms(floor),
                "—",
                "",
                "",
            ]
        )
        ok = quotes.stats.p99_ms <= TARGET_P99_MS and ratio >= TARGET_RATIO and not quotes.errors
        rows.append(
            [
                kind,
                "evaluate (8 tills)",
                f"{quotes.per_second:,.0f}",
                f"{quotes.stats.median_ms:.2f}",
                f"{quotes.stats.p99_ms:.2f}",
                cpu_ms(quotes),
                f"p99 ≤ {TARGET_P99_MS:.0f}",
                f"{ratio:.2f} (≥ {TARGET_RATIO})",
                verdict(ok),
            ]
        )
        if quotes.errors:
            console.print(f"[red]{kind}: {quotes.errors} evaluations failed[/]")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-client", type=int, default=250)
    parser.add_argument("--backends", default="sqlite,pg")
    args = parser.parse_args()
    rows: list[list[str]] = []
    for kind in args.backends.split(","):
        if kind == "pg" and pg_server_url() is None:
            console.print("[yellow]PostgreSQL: no server answers; skipped[/]")
            continue
        run_backend(kind, args.per_client, rows)
    results_table(
        "evaluate through HTTP: 30 lines, 200 rules, 8 concurrent tills",
        [
            "db",
            "what",
            "per s",
            "p50 ms",
            "p99 ms",
            "server CPU ms/req",
            "target",
            "ratio to healthz",
            "",
        ],
        rows,
    )
    console.print(f"client: {CLIENT}; machine: {machine_note()}")


if __name__ == "__main__":
    main()
