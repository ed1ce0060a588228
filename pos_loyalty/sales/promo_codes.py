"""Promo codes at the till: a code must belong to a rule of the active program and not be used
up, or the basket gets a clear 422; a sale that used a code counts it, atomically, at commit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pos_loyalty.errors import InvalidInput
from pos_loyalty.rules.compiled import CompiledRule, CompiledRules
from pos_loyalty.rules.config import DiscountRule
from pos_loyalty.rules.promo import PromoCodes, normalise_code
from pos_loyalty.rules.quote import PromoCodeUse
from pos_loyalty.sales.counters import add_within_cap, counter_values
from pos_loyalty.storage import UnitOfWork


class PromoCodeUnknown(InvalidInput):
    code = "promo_code_unknown"


class PromoCodeExhausted(InvalidInput):
    code = "promo_code_exhausted"


def _code_rules(rules: CompiledRules) -> dict[str, list[CompiledRule]]:
    """Normalised code → the rules it unlocks (item and basket level)."""
    found: dict[str, list[CompiledRule]] = {}
    for rule in (*rules.item_rules, *rules.basket_rules):
        for code in rule.promo_codes or ():
            found.setdefault(code, []).append(rule)
    return found


def _promo(rule: CompiledRule) -> PromoCodes:
    assert isinstance(rule.rule, DiscountRule) and rule.rule.promo is not None
    return rule.rule.promo


def _keys(code: str, customer_id: str | None) -> tuple[str, str | None]:
    return f"code:{code}", (f"code:{code}:{customer_id}" if customer_id else None)


def check_promo_codes(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    typed: Iterable[str],
    applied: Iterable[str],
    customer_id: str | None,
) -> tuple[PromoCodeUse, ...]:
    """Refuse an unknown or used-up code (422); return what the sale will count: one use per
    applied rule the basket's codes unlocked."""
    by_code = _code_rules(rules)
    applied_ids = set(applied)
    uses: list[PromoCodeUse] = []
    for text in typed:
        code = normalise_code(text)
        owners = by_code.get(code)
        if not owners:
            raise PromoCodeUnknown(
                f"promo code {text!r} is not valid in this store",
                details={"field": "promo_codes", "code": text},
            )
        for rule in owners:
            promo = _promo(rule)
            total_key, own_key = _keys(code, customer_id)
            values = counter_values(
                uow=uow, rule_id=rule.id, keys=[k for k in (total_key, own_key) if k]
            )
            if promo.max_uses and values[total_key] >= promo.max_uses:
                raise PromoCodeExhausted(
                    f"promo code {text!r} has been used up",
                    details={"field": "promo_codes", "code": text, "max_uses": promo.max_uses},
                )
            if promo.per_customer and own_key and values[own_key] >= promo.per_customer:
                raise PromoCodeExhausted(
                    f"promo code {text!r} was already used by this customer "
                    f"({promo.per_customer} time(s) allowed)",
                    details={
                        "field": "promo_codes",
                        "code": text,
                        "per_customer": promo.per_customer,
                    },
                )
            if rule.id in applied_ids:
                uses.append(PromoCodeUse(code, rule.id))
    return tuple(uses)


def count_promo_uses(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    uses: Iterable[PromoCodeUse],
    customer_id: str | None,
    transaction_id: str,
    now: datetime,
) -> None:
    """Count each code the sale used, inside the sale's transaction; a code another till used
    up meanwhile refuses the sale (422), which then writes nothing."""
    by_id = {rule.id: rule for rule in (*rules.item_rules, *rules.basket_rules)}
    for use in uses:
        rule = by_id.get(use.rule_id)
        if rule is None:
            continue  # the program changed since the quote; the quote's rules version decides
        promo = _promo(rule)
        total_key, own_key = _keys(use.code, customer_id)
        counted = {total_key: promo.max_uses}
        if own_key is not None:
            counted[own_key] = promo.per_customer
        if not all(
            add_within_cap(
                uow=uow,
                rule_id=rule.id,
                key=key,
                amount=1,
                cap=cap,
                now=now,
                transaction_id=transaction_id,
            )
            for key, cap in counted.items()
        ):
            raise PromoCodeExhausted(
                f"promo code {use.code!r} was used up meanwhile; evaluate the basket again",
                details={"field": "promo_codes", "code": use.code},
            )
