"""The active loyalty program in words, rule by rule, for the back office.

A rule's label is what the customer reads on the receipt; the line under it says, in the store's
language, what the rule gives and when it runs, from the rule's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.pages.words import Words
from pos_loyalty.rules.config import (
    Active,
    AnyRule,
    DiscountRule,
    PersonalRule,
    PointsRule,
    StampsRule,
    ThresholdRule,
    When,
)

_KIND = {
    "discount": ("скидка", "discount"),
    "points": ("баллы", "points"),
    "threshold": ("порог суммы", "spend threshold"),
    "stamps": ("штампы", "stamp card"),
    "personal": ("персональный купон", "personal coupon"),
}
_TRIGGER = {
    "favourite": ("любимый товар", "favourite goods"),
    "replenish": ("пора пополнить запас", "time to restock"),
    "cross_sell": ("к купленному", "goes with a purchase"),
    "winback": ("возвращение после перерыва", "welcome back"),
    "birthday": ("день рождения", "birthday"),
}
_WEEKDAYS = (("пн", "Mon"), ("вт", "Tue"), ("ср", "Wed"), ("чт", "Thu"), ("пт", "Fri"),
             ("сб", "Sat"), ("вс", "Sun"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class RuleInWords:
    id: str
    label: str
    kind: str
    gives: str
    conditions: list[str]


def _pick(w: Words, pair: tuple[str, str]) -> str:
    return pair[0] if w.russian else pair[1]


def _off(w: Words, percent: object, amount: int | None) -> str:
    return f"{percent}\u00a0%" if percent is not None else w.money(amount)


def _gives(rule: AnyRule, w: Words) -> str:
    ru = w.russian
    if isinstance(rule, DiscountRule):
        value = _off(w, rule.percent, rule.amount_off)
        where = {
            "basket": ("на чек", "off the basket"),
            "lines": ("на каждую подходящую единицу", "off each matching unit"),
            "cheapest": ("на самый дешёвый подходящий товар", "off the cheapest matching unit"),
        }[rule.applies_to]
        return f"{'скидка' if ru else ''} {value} {_pick(w, where)}".strip()
    if isinstance(rule, PointsRule):
        if rule.earn_percent is not None:
            return (
                f"{rule.earn_percent}\u00a0% оплаченного деньгами — баллами"
                if ru
                else f"{rule.earn_percent}% of what is paid in money, in points"
            )
        return (
            f"{w.points(rule.points_per_step)} за каждые {w.money(rule.earn_per)}"
            if ru
            else f"{w.points(rule.points_per_step)} per {w.money(rule.earn_per)}"
        )
    if isinstance(rule, ThresholdRule):
        reward = rule.reward
        if reward.coupon is not None:
            value = _off(w, reward.coupon.percent_off, reward.coupon.amount_off)
            prize = (
                f"купон на {value} на следующую покупку ({reward.coupon.valid_days} дн.)"
                if ru
                else f"a {value} coupon for the next visit ({reward.coupon.valid_days} days)"
            )
        elif reward.amount_off is not None:
            prize = (f"скидка {w.money(reward.amount_off)}" if ru
                     else f"{w.money(reward.amount_off)} off")  # fmt: skip
        else:
            prize = w.points(reward.points)
        spend = w.money(rule.min_subtotal)
        return f"от {spend} — {prize}" if ru else f"spend {spend}, get {prize}"
    if isinstance(rule, StampsRule):
        return (f"каждая {rule.every}-я единица бесплатно" if ru
                else f"every {rule.every}th unit free")  # fmt: skip
    if isinstance(rule, PersonalRule):
        value = _off(w, rule.percent_off, rule.amount_off)
        trigger = _pick(w, _TRIGGER[rule.trigger])
        return f"купон {value}: {trigger}" if ru else f"{value} coupon: {trigger}"
    return ""


def _when(when: When, w: Words) -> list[str]:
    ru = w.russian
    out = []
    if when.tiers:
        out.append(("уровни: " if ru else "tiers: ") + ", ".join(when.tiers))
    if when.segments:
        out.append(("сегменты: " if ru else "segments: ") + ", ".join(when.segments))
    if when.categories:
        out.append(("категории: " if ru else "categories: ") + ", ".join(when.categories))
    if when.skus:
        out.append(("товары: " if ru else "items: ") + ", ".join(when.skus))
    if when.exclude_skus:
        out.append(("кроме: " if ru else "except: ") + ", ".join(when.exclude_skus))
    if when.min_subtotal:
        out.append(("чек от " if ru else "basket from ") + w.money(when.min_subtotal))
    if when.first_purchase is True:
        out.append("только первая покупка" if ru else "first purchase only")
    if when.first_purchase is False:
        out.append("не на первую покупку" if ru else "not on a first purchase")
    if when.stores:
        out.append(("магазины: " if ru else "stores: ") + ", ".join(when.stores))
    return out


def _active(active: Active, w: Words) -> list[str]:
    ru = w.russian
    out = []
    if active.from_ or active.until:
        start = active.from_.strftime("%d.%m.%Y") if active.from_ else "…"
        end = active.until.strftime("%d.%m.%Y") if active.until else "…"
        out.append(f"с {start} по {end}" if ru else f"from {start} to {end}")
    if active.weekdays:
        days = ", ".join(_pick(w, _WEEKDAYS[d - 1]) for d in sorted(active.weekdays))
        out.append(("дни: " if ru else "days: ") + days)
    if active.hours:
        out.append(("часы: " if ru else "hours: ") + active.hours)
    return out


def rules_in_words(rules: list[AnyRule], w: Words) -> list[RuleInWords]:
    """Every rule of the program, in the order of the bundle."""
    out = []
    for rule in rules:
        conditions = _when(rule.when, w) + _active(rule.active, w)
        if getattr(rule, "exclusive", False):
            conditions.append("не суммируется с другими" if w.russian else "exclusive")
        out.append(
            RuleInWords(
                id=rule.id,
                label=rule.label,
                kind=_pick(w, _KIND.get(rule.kind, (rule.kind, rule.kind))),
                gives=_gives(rule, w),
                conditions=conditions,
            )
        )
    return out
