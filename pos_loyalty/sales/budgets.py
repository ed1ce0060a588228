"""Rule budgets at the till: which rules have spent their cap (so evaluate leaves them out and
explain says so), and, inside each sale's transaction, adding the sale's reward to the counters
with a conditional UPDATE: the counter must still be below the cap, so concurrent tills queue
on the row and the sale that reaches the cap is the last (overspend ≤ that sale's reward)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from pos_loyalty.errors import Conflict
from pos_loyalty.money import format_money
from pos_loyalty.rules.budget import Budget, period_key
from pos_loyalty.rules.compiled import CompiledRule, CompiledRules
from pos_loyalty.rules.messages import is_russian
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.counters import add_within_cap, counter_values
from pos_loyalty.storage import UnitOfWork


class BudgetReached(Conflict):
    code = "budget_reached"


def _keys(budget: Budget, store_id: str, customer_id: str | None, day: Any) -> dict[str, str]:
    period = period_key(budget.period, day)
    scope = f"store:{store_id}:{period}" if budget.per_store else period
    keys = {}
    if budget.max_amount:
        keys["amount"] = f"budget:{scope}:amount"
    if budget.max_uses:
        keys["uses"] = f"budget:{scope}:uses"
    if budget.per_customer and customer_id:
        keys["customer"] = f"budget:{period}:customer:{customer_id}"
    return keys


_PERIOD_WORDS = {
    "day": ("в день", "a day"),
    "week": ("в неделю", "a week"),
    "campaign": ("на акцию", "for the campaign"),
}


def _limit_text(rule: CompiledRule, budget: Budget, which: str, currency: str, locale: str) -> str:
    ru = is_russian(locale)
    period = _PERIOD_WORDS[budget.period][0 if ru else 1]
    if which == "amount":
        if rule.kind == "points":
            amount = f"{budget.max_amount} {'баллов' if ru else 'points'}"
        else:
            amount = format_money(budget.max_amount, currency, locale)
        return f"{amount} {period}"
    if which == "uses":
        return f"{budget.max_uses} {'покупок' if ru else 'sales'} {period}"
    return f"{budget.per_customer} {'раз на покупателя' if ru else 'per customer'} {period}"


def limits_reached(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    store_id: str,
    customer_id: str | None,
    now: datetime,
    tz: tzinfo,
    currency: str,
    locale: str,
) -> dict[str, str]:
    """Rule id → the cap it has reached, in words for `explain` (empty without budgets)."""
    budgeted = rules.budgeted
    if not budgeted:
        return {}
    day = now.astimezone(tz).date()
    reached: dict[str, str] = {}
    for rule, budget in budgeted:
        keys = _keys(budget, store_id, customer_id, day)
        values = counter_values(uow=uow, rule_id=rule.id, keys=list(keys.values()))
        caps = {"amount": budget.max_amount, "uses": budget.max_uses}
        caps["customer"] = budget.per_customer
        for which, key in keys.items():
            if values[key] >= caps[which]:
                reached[rule.id] = _limit_text(rule, budget, which, currency, locale)
                break
    return reached


def _rewards(quote: Quote) -> dict[str, int]:
    """What each rule gave in this sale: money off, points earned, or a coupon (0 counted)."""
    given: dict[str, int] = {}
    for applied in quote.applied:
        given[applied.rule_id] = given.get(applied.rule_id, 0) + applied.amount
    for earned in quote.points.earned:
        given[earned.rule_id] = given.get(earned.rule_id, 0) + earned.points
    for coupon in quote.coupons.to_issue:
        given.setdefault(coupon.rule_id, 0)
    return given


def count_budgets(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    quote: Quote,
    store_id: str,
    customer_id: str | None,
    transaction_id: str,
    now: datetime,
    tz: tzinfo,
) -> None:
    """Add the sale's rewards to its rules' budgets; a cap spent meanwhile by another till
    refuses the sale (409 `budget_reached`: evaluate again, the rule no longer applies)."""
    budgeted = rules.budgeted
    if not budgeted:
        return
    given = _rewards(quote)
    day = now.astimezone(tz).date()
    for rule, budget in budgeted:
        if rule.id not in given:
            continue
        keys = _keys(budget, store_id, customer_id, day)
        adds = {"amount": given[rule.id], "uses": 1, "customer": 1}
        caps = {"amount": budget.max_amount, "uses": budget.max_uses}
        caps["customer"] = budget.per_customer
        for which, key in keys.items():
            if not add_within_cap(
                uow=uow,
                rule_id=rule.id,
                key=key,
                amount=adds[which],
                cap=caps[which],
                now=now,
                transaction_id=transaction_id,
                in_proportion=which == "amount",  # a refund gives back its share of the reward
            ):
                raise BudgetReached(
                    f"the budget of rule {rule.id!r} was spent meanwhile; evaluate the basket "
                    "again",
                    details={"rule_id": rule.id, "limit": which},
                )
