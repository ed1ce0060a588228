"""Buy N get M ("2 по цене 1", "3 за 2"): a discount rule with `applies_to = "cheapest"` and
`buy = N` (`get = M`, default 1). No card needed.

For every N whole units of the matching goods in the basket (skus or categories, any mix),
the M cheapest get `percent` off (100: free) or `amount_off` each; it repeats per N, so 4
yoghurts under "2 по цене 1" give 2 free, and 3 give 1. The discounted units are the cheapest
of all matching units in the basket (never the dearer of each pair). Weighed goods do not count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any

from pos_loyalty.money import Qty, percent_of
from pos_loyalty.rules.compiled import CompiledRule

_UNIT_PRICE_POS = attrgetter("unit_price", "pos")

UnitShare = Callable[[int, Qty, int], int]


def whole_units(lines: Sequence[Any]) -> int:
    return sum(int(line.qty) for line in lines if isinstance(line.qty, int))


def bundle_parts(
    rule: CompiledRule,
    usable: Sequence[Any],
    percent: int | Decimal | None,
    amount_off: int | None,
    unit_share: UnitShare,
) -> tuple[list[tuple[Any, int]], int]:
    """(line, discount) for the units the rule discounts, and the whole units counted.
    `unit_share(remaining, qty, units)` is what `units` of a line are worth now (the engine's)."""
    units = whole_units(usable)
    due = (units // rule.buy) * rule.get
    parts: list[tuple[Any, int]] = []
    for line in sorted((ln for ln in usable if isinstance(ln.qty, int)), key=_UNIT_PRICE_POS):
        if due == 0:
            break
        take = min(due, int(line.qty))
        worth = unit_share(line.amount - line.discount, line.qty, take)
        value = (
            percent_of(worth, percent)
            if percent is not None
            else min((amount_off or 0) * take, worth)
        )
        if value > 0:
            parts.append((line, value))
        due -= take
    return parts, units


def bundle_params(rule: CompiledRule, units: int) -> dict[str, Any]:
    return {"buy": rule.buy, "get": rule.get, "units": units}
