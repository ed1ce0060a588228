"""What changed between two programs, rule by rule, in words a marketer can check."""

from __future__ import annotations

import json
from typing import Any

from pos_loyalty.hq.bundle import Program

_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys (`when.categories`); lists and scalars are leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(not set)"
    return json.dumps(value, ensure_ascii=False)


def _changes(subject: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = _flat(old), _flat(new)
    lines = []
    for key in sorted(a.keys() | b.keys()):
        before, after = a.get(key, _MISSING), b.get(key, _MISSING)
        if before != after:
            lines.append(f"{subject}{key} changed from {_show(before)} to {_show(after)}")
    return lines


def _keyed(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(item[key]): item for item in items}


def diff_programs(old: Program, new: Program) -> list[str]:
    """One line per difference: rules added, removed, and each key changed from what to what."""
    before, after = old.to_json(with_defaults=True), new.to_json(with_defaults=True)
    lines = _changes("points.", before["points"], after["points"])
    old_tiers, new_tiers = _keyed(before["tiers"], "name"), _keyed(after["tiers"], "name")
    for name in sorted(old_tiers.keys() - new_tiers.keys()):
        lines.append(f'tier "{name}" removed')
    for name in sorted(new_tiers.keys() - old_tiers.keys()):
        lines.append(f'tier "{name}" added (from {new_tiers[name].get("min_spend")} spent)')
    for name in sorted(old_tiers.keys() & new_tiers.keys()):
        lines += _changes(f'tier "{name}": ', old_tiers[name], new_tiers[name])
    old_rules, new_rules = _keyed(before["rules"], "id"), _keyed(after["rules"], "id")
    for rule_id in [r["id"] for r in before["rules"] if r["id"] not in new_rules]:
        rule = old_rules[rule_id]
        lines.append(f'rule "{rule_id}" removed ({rule["kind"]}, «{rule["label"]}»)')
    for rule_id in [r["id"] for r in after["rules"] if r["id"] not in old_rules]:
        rule = new_rules[rule_id]
        lines.append(f'rule "{rule_id}" added ({rule["kind"]}, «{rule["label"]}»)')
    for rule_id in [r["id"] for r in after["rules"] if r["id"] in old_rules]:
        lines += _changes(f'rule "{rule_id}": ', old_rules[rule_id], new_rules[rule_id])
    lines += _changes("category_names.", before["category_names"], after["category_names"])
    return lines or ["no changes"]
