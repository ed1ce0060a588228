"""Benchmark: price a 30-line basket under 200 active rules, in process.

    .venv/bin/python bench/evaluate.py [--iterations 3000]

Prints median, p99 and throughput next to the targets of issue 3 (median ≤ 1 ms, p99 ≤ 3 ms),
and, as the same-run reference, the same basket priced under no rules (the engine's fixed cost).
The HTTP half of the benchmark (uvicorn, 8 concurrent tills, next to a bare /healthz on the same
server) is `bench/evaluate_http.py`, which reuses this file's rules and basket.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pos_loyalty.rules import (
    Basket,
    BasketLine,
    CompiledRules,
    CustomerSnapshot,
    RulesConfig,
    compile_rules,
    evaluate,
)

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=MOSCOW)  # a Monday morning: every window below is open
CATEGORIES = ["dairy", "bakery", "coffee", "cheese", "fruit", "meat", "drinks", "snacks"]


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = False

    def verdict(self) -> str:
        if self.target is None:
            return ""
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "ok" if ok else "MISSED"


def bench_rules(count: int = 200) -> RulesConfig:
    """A realistic mix: mostly sku/category promotions, a few card, points, threshold, stamps."""
    window = {
        "from": "2026-01-01",
        "until": "2026-12-31",
        "weekdays": [1, 2, 3, 4, 5],
        "hours": "07:00-23:00",
    }
    rules: list[dict[str, Any]] = []
    n_points, n_thresholds, n_stamps, n_cards, n_category = 10, 10, 10, 20, 30
    n_sku = count - n_points - n_thresholds - n_stamps - n_cards - n_category
    for i in range(n_sku):  # one promotion per sku, over a catalogue of ~150 skus
        rule: dict[str, Any] = {
            "id": f"sku-promo-{i}",
            "kind": "discount",
            "label": f"Акция {i}",
            "applies_to": "lines",
            "when": {"skus": [f"46000000{i * 5 % 150:05d}"]},
            "priority": i % 7,
        }
        if i % 3:
            rule["percent"] = 5 + i % 20
        else:
            rule["amount_off"] = 500 + i
        if i % 4 == 0:
            rule["active"] = window
        if i % 10 == 0:
            rule["exclusive"] = True
        rules.append(rule)
    for i in range(n_category):
        rules.append(
            {
                "id": f"cat-{i}",
                "kind": "discount",
                "label": f"Категория {i}",
                "percent": 3 + i % 10,
                "applies_to": "cheapest" if i % 5 == 0 else "lines",
                "when": {"categories": [CATEGORIES[i % len(CATEGORIES)]]},
                "stack_group": f"cat-group-{i % 6}",
                "active": window,
            }
        )
    for i in range(n_cards):
        rules.append(
            {
                "id": f"card-{i}",
                "kind": "discount",
                "label": f"Карта {i}",
                "percent": 1 + i % 10,
                "stack_group": "card",
                "max_discount": 100_000,
                "when": {
                    "tiers": ["gold" if i % 2 else "silver"],
                    "exclude_skus": ["4600000000001"],
                },
            }
        )
    for i in range(n_points):
        rules.append(
            {
                "id": f"bonus-{i}",
                "kind": "points",
                "label": f"Бонусы {i}",
                "earn_percent": 1 + i % 5,
                "stack_group": "bonus" if i % 2 else None,
                "multipliers": {"coffee": 2},
            }
        )
    for i in range(n_thresholds):
        rules.append(
            {
                "id": f"spend-{i}",
                "kind": "threshold",
                "label": f"Порог {i}",
                "min_subtotal": 50_000 + i * 20_000,
                "hint_within": 15_000,
                "reward": {"coupon": {"amount_off": 5_000 + i * 1_000, "valid_days": 14}}
                if i % 3
                else {"amount_off": 2_000},
                "stack_group": "spend-coupon" if i % 3 else "spend-now",
            }
        )
    for i in range(n_stamps):
        rules.append(
            {
                "id": f"stamps-{i}",
                "kind": "stamps",
                "label": f"Штампы {i}",
                "every": 5 + i,
                "when": {"categories": [CATEGORIES[i % len(CATEGORIES)]]},
            }
        )
    return RulesConfig.from_dict({"tiers": bench_tiers(), "rules": rules})


def bench_tiers() -> list[dict[str, Any]]:
    return [{"name": "silver", "min_spend": 1_000_000}, {"name": "gold", "min_spend": 3_000_000}]


def bench_basket(lines: int = 30) -> Basket:
    items = []
    for i in range(lines):
        qty: int | Decimal = Decimal("0.345") if i % 7 == 0 else 1 + i % 3
        items.append(
            BasketLine(
                f"46000000{i * 3:05d}",
                f"Товар {i}",
                CATEGORIES[i % len(CATEGORIES)],
                qty,
                4_990 + 1_000 * i,
            )
        )
    return Basket("msk-001", "lane-1", tuple(items), points_to_redeem=200)


def bench_customer() -> CustomerSnapshot:
    return CustomerSnapshot(
        "c-1",
        lifetime_spend=3_500_000,
        points_balance=1_000,
        segments=frozenset({"loyal"}),
        stamps={f"stamps-{i}": i for i in range(10)},
    )


def timed(call: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(min(200, iterations)):  # warm up
        call()
    samples = []
    gc.collect()
    for _ in range(iterations):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def run_inprocess(iterations: int) -> list[Row]:
    config = bench_rules()
    start = time.perf_counter()
    compiled: CompiledRules = compile_rules(config, tz=MOSCOW)
    compile_ms = (time.perf_counter() - start) * 1e3
    basket, customer = bench_basket(), bench_customer()
    quote = evaluate(basket, customer, compiled, NOW, explain=True)
    no_rules = compile_rules(RulesConfig.from_dict({"tiers": bench_tiers()}), tz=MOSCOW)
    reference = timed(lambda: evaluate(basket, customer, no_rules, NOW), iterations)
    plain = timed(lambda: evaluate(basket, customer, compiled, NOW), iterations)
    explained = timed(lambda: evaluate(basket, customer, compiled, NOW, explain=True), iterations)
    return [
        Row("rules (all active now)", float(compiled.rule_count), ""),
        Row("  lines in basket", float(len(basket.lines)), ""),
        Row("  rules applied (money)", float(len(quote.applied)), ""),
        Row("  rules not applied (explained)", float(len(quote.not_applied or ())), ""),
        Row("compile 200 rules", compile_ms, "ms"),
        Row("evaluate median", statistics.median(plain), "ms", 1.0),
        Row("evaluate p99", p99(plain), "ms", 3.0),
        Row("evaluate throughput", 1000 / statistics.mean(plain), "baskets/s"),
        Row("reference: no rules, median", statistics.median(reference), "ms"),
        Row("reference: no rules, p99", p99(reference), "ms"),
        # the machine's speed cancels out: how many no-rules evaluations one 200-rule basket costs
        Row(
            "median ÷ no-rules median", statistics.median(plain) / statistics.median(reference), "×"
        ),
        # explain=True renders a reason for every rule (support, dry runs): no target of its own
        Row("evaluate explain=True median", statistics.median(explained), "ms"),
        Row("evaluate explain=True p99", p99(explained), "ms"),
    ]


def print_table(title: str, rows: list[Row]) -> None:
    print(title)
    print(f"{'metric':<34} {'measured':>12} {'unit':<10} {'target':>10}  verdict")
    for row in rows:
        target = (
            ""
            if row.target is None
            else ("≥ " if row.higher_is_better else "≤ ") + (f"{row.target:g}")
        )
        print(f"{row.name:<34} {row.value:>12.3f} {row.unit:<10} {target:>10}  {row.verdict()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args(argv)
    rows = run_inprocess(args.iterations)
    print_table(
        f"In-process evaluate ({args.iterations} iterations, Python {sys.version.split()[0]})", rows
    )
    return 0 if all(row.verdict() != "MISSED" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
