"""Dry run over 100,000 past sales on SQLite: every basket replayed under a proposed program,
each customer's balance, lifetime spend, first purchase and stamps rebuilt as they were at the
sale, beside what each sale recorded. Target: ≤ 60 s for 100,000 sales (issue 14).

The history (sales with 3 lines each, an earn entry per identified sale) is bulk-loaded first,
not timed; the program is the demo store's (examples/rules.toml), the proposal adds a 10 % basket
discount for first purchases and changes the points rate.

    .venv/bin/python bench/dry_run.py [--sales 100000] [--customers 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import console, results_table, verdict
from bench.rfm import (
    CUSTOMER_COLUMNS,
    LINE_COLUMNS,
    NOW,
    SALE_COLUMNS,
    _stamp,
    bulk_insert,
    customers,
)
from pos_loyalty.hq.bundle import program_from_json
from pos_loyalty.hq.replay import dry_run
from pos_loyalty.rules.config import load_rules_file
from pos_loyalty.storage import UnitOfWork, make_engine
from pos_loyalty.storage.migrate import upgrade

TARGET_S = 60.0
DAYS = 90
REPO = Path(__file__).resolve().parent.parent
GOODS = [
    ("4601234567890", "Молоко 3,2%", "dairy", 8990),
    ("4600000000011", "Эклер", "desserts", 12000),
    ("4600000000028", "Кофе зерновой", "coffee", 54900),
    ("4600000000035", "Хлеб", "bakery", 4500),
    ("4600000000042", "Сыр", "dairy", 31900),
    ("4600000000059", "Торт", "desserts", 89000),
]
LEDGER_COLUMNS = ("customer_id", "kind", "points", "created_at", "note")


def history(
    count: int, customer_count: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    sales, lines, ledger = [], [], []
    for _ in range(count):
        sale_id = uuid.uuid4().hex
        at = NOW - timedelta(seconds=rng.randrange(DAYS * 86_400))
        owner = f"c{rng.randrange(customer_count):07d}" if rng.random() < 0.7 else None
        total = 0
        for position in range(3):
            sku, name, category, price = GOODS[rng.randrange(len(GOODS))]
            qty = rng.randint(1, 3)
            total += price * qty
            lines.append(
                (sale_id, position, sku, name, category, qty * 1000, price,
                 price * qty, 0, 0, price * qty, "{}")
            )  # fmt: skip
        earn = total // 2000 if owner else 0
        earned = [{"rule_id": "bonus-5", "points": earn}] if owner else []
        recorded = json.dumps(
            {"applied": [], "points": {"earned": earned}, "coupons": {"to_issue": []}}
        )
        sales.append(
            (sale_id, "msk-001", "lane-1", owner, None, "bench", "RUB", total, 0, 0, total,
             earn, 0, None, None, 0, "completed", 0, "{}", recorded, _stamp(at, "sqlite"))
        )  # fmt: skip
        if owner:
            ledger.append((owner, "earn", earn, _stamp(at, "sqlite"), "bench"))
    return sales, lines, ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(14)
    active = load_rules_file(REPO / "examples" / "rules.toml")
    proposal = active.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    proposal["rules"].append(
        {"id": "welcome-10", "kind": "discount", "label": "Первая покупка −10%",
         "applies_to": "basket", "percent": 10, "when": {"first_purchase": True}}
    )  # fmt: skip
    proposed = program_from_json(proposal).compile()
    with tempfile.TemporaryDirectory(prefix="bench-dry-run-") as workdir:
        engine = make_engine(f"sqlite:///{Path(workdir) / 'bench.db'}")
        upgrade(engine)
        console.print(f"loading {args.sales} sales for {args.customers} customers …")
        bulk_insert(engine, "sqlite", "customers", CUSTOMER_COLUMNS,
                    customers(args.customers, "sqlite"))  # fmt: skip
        sales, lines, ledger = history(args.sales, args.customers, rng)
        bulk_insert(engine, "sqlite", "transactions", SALE_COLUMNS, iter(sales))
        bulk_insert(engine, "sqlite", "transaction_lines", LINE_COLUMNS, iter(lines))
        bulk_insert(engine, "sqlite", "ledger_entries", LEDGER_COLUMNS, iter(ledger))
        from pos_loyalty.rules.compiled import compile_rules

        started, cpu_started = time.perf_counter(), time.process_time()
        with UnitOfWork(engine) as uow:
            result = dry_run(
                uow=uow,
                active=compile_rules(active),
                proposed=proposed,
                since=NOW - timedelta(days=DAYS + 1),
                locale="ru_RU",
                currency="RUB",
            )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        engine.dispose()
    rate = result.sales / elapsed if elapsed else 0.0
    load = os.getloadavg()[0]
    results_table(
        f"Dry run, SQLite, {result.sales} sales",
        ["sales", "wall s", "CPU s", "sales/s", "target", "verdict", "load avg"],
        [[str(result.sales), f"{elapsed:.1f}", f"{cpu:.1f}", f"{rate:,.0f}",
          f"≤ {TARGET_S:.0f} s", verdict(elapsed <= TARGET_S * result.sales / 100_000),
          f"{load:.1f} on {os.cpu_count()} cores"]],
    )  # fmt: skip
    welcome = next(r for r in result.rules if r.rule_id == "welcome-10")
    console.print(
        f"welcome-10 would touch {welcome.proposed.baskets} baskets, "
        f"discount {welcome.proposed.discount / 100:,.2f} ₽; total discount "
        f"{result.active_total.discount / 100:,.2f} → {result.proposed_total.discount / 100:,.2f} ₽"
    )


if __name__ == "__main__":
    main()
