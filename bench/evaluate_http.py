"""HTTP evaluate, `serve` against the floor (`bench/floor.py`) in the same run: 8 concurrent tills
post a 30-line basket under 200 active rules (an identified gold customer, points to burn).

Both do the same work per request (check the key, validate the basket, read the customer and
stamp counters, price, store the quote durably, answer the same JSON); the floor does it in a raw
ASGI app on the raw driver. Targets (issue 18): `serve`'s CPU per request ≤ 2 × the floor's on
both databases; p99 ≤ 15 ms on SQLite. The server's CPU time per request comes from /proc.

    .venv/bin/python bench/evaluate_http.py [--per-client 250] [--backends sqlite,pg] [--rounds 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from bench.common import (
    console,
    pg_server_url,
    results_table,
    throwaway_database,
    write_config,
)
from bench.evaluate import bench_basket, bench_rules
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
from pos_loyalty.customers.models import Customer
from pos_loyalty.customers.service import enrol_customer
from pos_loyalty.rules.payload import BasketIn, BasketLineIn
from pos_loyalty.sales.pricing import basket_request_json
from pos_loyalty.security import hash_api_key
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

TARGET_CPU_RATIO = 2.0
TARGET_P99_SQLITE_MS = 15.0


def basket_body(customer_id: str) -> bytes:
    """The bench basket as a till sends it (the JSON the quotes row keeps as the request)."""
    basket = bench_basket()
    body = BasketIn(
        store_id="bench-001",
        lane_id="lane-1",
        customer={"id": customer_id},
        lines=[BasketLineIn.model_validate(dataclasses.asdict(ln)) for ln in basket.lines],
        points_to_redeem=basket.points_to_redeem,
    )
    return json.dumps(basket_request_json(body), ensure_ascii=False).encode()


def run_backend(kind: str, per_client: int, rounds: int, rows: list[list[str]]) -> None:
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
        call = Call("POST", "/v1/baskets/evaluate", basket_body(customer_id))

        def evaluate(till: int, i: int) -> Call:
            return call

        serve_against_floor(
            kind=kind,
            config=config,
            key=key,
            key_hash=hash_api_key(key),
            request=evaluate,
            per_client=per_client,
            rounds=rounds,
            cpu_target=TARGET_CPU_RATIO,
            p99_target=TARGET_P99_SQLITE_MS if kind == "sqlite" else None,
            rows=rows,
        )


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
        "evaluate through HTTP: 30 lines, 200 rules, 8 concurrent tills; serve vs the floor",
        COMPARISON_COLUMNS,
        rows,
    )
    console.print(f"client: {CLIENT}; machine: {machine_note()}")


if __name__ == "__main__":
    main()
