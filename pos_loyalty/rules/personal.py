"""Personal offers (`kind = "personal"`): coupons chosen from the customer's purchase history.

Pure like the rest of the engine: storage computes a `CustomerHistory`, this module decides
which coupons the sale will issue. Each trigger either proposes one coupon with an estimated
value in minor units or says why not; then stack groups keep their best, and the receipt keeps
the `max_per_receipt` most valuable (ties: priority, then id).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from pos_loyalty.money import percent_of
from pos_loyalty.rules.compiled import CompiledRule
from pos_loyalty.rules.config import PersonalRule
from pos_loyalty.rules.inputs import CustomerHistory, CustomerSnapshot, ItemHistory
from pos_loyalty.rules.messages import reason_text, times_word
from pos_loyalty.rules.quote import CouponToIssue, coupon_expiry

StaticReason = Callable[[CompiledRule], tuple[str, dict[str, Any]] | None]
Skip = Callable[..., None]  # skip(rule_id, label, code, **params)


@dataclass(frozen=True, slots=True)
class PersonalContext:
    """What the personal step needs from the evaluation in progress."""

    customer: CustomerSnapshot | None
    basket_skus: frozenset[str]
    basket_categories: frozenset[str]
    after_item: int  # the basket after item-level discounts, minor units
    now: datetime
    today: date  # store-local
    tz: tzinfo
    locale: str
    static_reason: StaticReason
    skip: Skip
    category_names: Mapping[str, str] = field(default_factory=dict)  # `[store.category_names]`
    basket_positions: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # sku/category

    def item_names(self, keys: Iterable[str]) -> str:
        """Skus and categories as people read them: a category by its store name, else its key."""
        return ", ".join(self.category_names.get(key, key) for key in keys)


@dataclass(frozen=True, slots=True)
class _Offer:
    rule: CompiledRule
    spec: PersonalRule
    value: int  # estimated worth to the customer, minor units (ranks the offers)
    coupon: CouponToIssue


@dataclass(frozen=True, slots=True)
class _Target:
    """What a coupon is for: goods (skus or categories, both empty = whole basket)."""

    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    item_name: str = ""


def choose_personal_coupons(
    rules: Sequence[CompiledRule], ctx: PersonalContext
) -> list[CouponToIssue]:
    """The personal coupons this sale will issue, most valuable first."""
    offers: list[_Offer] = []
    for rule in rules:
        offer = _offer_for(rule, ctx)
        if offer is not None:
            offers.append(offer)
    offers = _best_of_stack_groups(offers, ctx)
    offers.sort(key=lambda o: (-o.value, -o.rule.priority, o.rule.id))
    if not offers:
        return []
    limit = min(o.spec.max_per_receipt for o in offers)
    for dropped in offers[limit:]:
        ctx.skip(
            dropped.rule.id,
            dropped.rule.label,
            "max_per_receipt",
            max=limit,
            by=", ".join(o.rule.id for o in offers[:limit]),
        )
    return [o.coupon for o in offers[:limit]]


def _best_of_stack_groups(offers: list[_Offer], ctx: PersonalContext) -> list[_Offer]:
    best: dict[str, _Offer] = {}
    for offer in offers:
        group = offer.rule.stack_group
        if group is None:
            continue
        held = best.get(group)
        if held is None or _rank(offer) < _rank(held):
            best[group] = offer
    kept = []
    for offer in offers:
        group = offer.rule.stack_group
        winner = best.get(group) if group is not None else None
        if winner is not None and winner is not offer:
            ctx.skip(
                offer.rule.id, offer.rule.label, "lost_stack_group", group=group, by=winner.rule.id
            )
            continue
        kept.append(offer)
    return kept


def _rank(offer: _Offer) -> tuple[int, int, str]:
    return (-offer.value, -offer.rule.priority, offer.rule.id)


def _offer_for(rule: CompiledRule, ctx: PersonalContext) -> _Offer | None:
    spec = rule.rule
    assert isinstance(spec, PersonalRule)
    reason = ctx.static_reason(rule)
    if reason:
        ctx.skip(rule.id, rule.label, reason[0], **reason[1])
        return None
    customer = ctx.customer
    assert customer is not None  # personal rules need a customer: static_reason said so
    history = customer.history
    if history is None:
        ctx.skip(rule.id, rule.label, "no_history")
        return None
    if ctx.after_item < rule.min_subtotal:
        ctx.skip(
            rule.id,
            rule.label,
            "below_min_subtotal",
            min_subtotal=rule.min_subtotal,
            missing=rule.min_subtotal - ctx.after_item,
        )
        return None
    if rule.id in history.active_coupons:
        ctx.skip(rule.id, rule.label, "coupon_active")
        return None
    last = history.last_issued.get(rule.id)
    if spec.cooldown_days and last is not None:
        next_day = _local_date(last, ctx.tz) + timedelta(days=spec.cooldown_days)
        if ctx.today < next_day:
            ctx.skip(rule.id, rule.label, "cooldown", next=next_day.strftime("%d.%m.%Y"))
            return None
    trigger = _TRIGGERS[spec.trigger]
    return trigger(rule, spec, history, ctx)


# -- triggers ---------------------------------------------------------------------------------


def _favourite(
    rule: CompiledRule, spec: PersonalRule, history: CustomerHistory, ctx: PersonalContext
) -> _Offer | None:
    since = ctx.today - timedelta(days=spec.lookback)
    pool = history.skus if spec.by == "sku" else history.categories
    best: tuple[int, int, str] | None = None
    best_item: ItemHistory | None = None
    for item in pool.values():
        if not _goods_allowed(rule, item, is_sku=spec.by == "sku"):
            continue
        recent = [i for i, day in enumerate(item.days) if day >= since]
        if len(recent) < spec.min_purchases:
            continue
        key = (-len(recent), -sum(item.amounts[i] for i in recent), item.key)
        if best is None or key < best:
            best, best_item = key, item
    if best is None or best_item is None:
        ctx.skip(
            rule.id,
            rule.label,
            "no_favourite",
            times=times_word(spec.min_purchases, ctx.locale),
            days=spec.lookback,
        )
        return None
    visits, spent = -best[0], -best[1]
    target = _item_target(spec.by, best_item, ctx)
    reason = _said(
        ctx,
        "personal_favourite",
        item=target.item_name,
        times=times_word(visits, ctx.locale),
        days=spec.lookback,
    )
    return _make_offer(rule, spec, ctx, target, reference=spent // visits, reason=reason)


def _replenish(
    rule: CompiledRule, spec: PersonalRule, history: CustomerHistory, ctx: PersonalContext
) -> _Offer | None:
    since = ctx.today - timedelta(days=spec.lookback)
    found: list[tuple[tuple[int, int, str], ItemHistory, int, date]] = []
    for item in history.skus.values():
        if not _goods_allowed(rule, item, is_sku=True):
            continue
        days = [day for day in item.days if day >= since]
        in_basket = item.key in ctx.basket_skus
        if in_basket and (not days or days[-1] < ctx.today):
            days.append(ctx.today)  # this basket is a purchase too
        if len(days) < max(spec.min_purchases, 2):
            continue
        gaps = [(b - a).days for a, b in pairwise(days)]
        interval = _median_days(gaps)
        if interval < spec.min_interval_days:
            continue
        spread = statistics.median(abs(g - interval) for g in gaps)
        if spread * 100 > interval * spec.tolerance_percent:
            continue
        anchor = days[-1]
        expected = anchor + timedelta(days=interval)
        if (ctx.today - expected).days > interval:
            continue  # overdue by a whole interval: the habit has stopped
        key = (0 if in_basket else 1, -len(days), item.key)
        found.append((key, item, interval, expected))
    if not found:
        ctx.skip(
            rule.id, rule.label, "no_regular_purchase", min=spec.min_purchases, days=spec.lookback
        )
        return None
    _, item, interval, expected = min(found, key=lambda f: f[0])
    if spec.lead_days is not None:
        lead = spec.lead_days
    else:
        lead = percent_of(interval, spec.lead_percent if spec.lead_percent is not None else 25)
    start_day = expected - timedelta(days=lead)
    valid_from = max(ctx.now, datetime.combine(start_day, time(0), tzinfo=ctx.tz))
    target = _item_target("sku", item, ctx)
    amounts = item.amounts
    reference = sum(amounts) // len(amounts) if amounts else ctx.after_item
    reason = _said(ctx, "personal_replenish", item=target.item_name, interval=interval)
    return _make_offer(
        rule, spec, ctx, target, reference=reference, reason=reason, valid_from=valid_from
    )


def _cross_sell(
    rule: CompiledRule, spec: PersonalRule, history: CustomerHistory, ctx: PersonalContext
) -> _Offer | None:
    since = ctx.today - timedelta(days=spec.lookback)
    wanted = frozenset(spec.if_bought)
    bought = sorted(
        wanted & (ctx.basket_skus | ctx.basket_categories | _bought_since(history, since))
    )
    if not bought:
        ctx.skip(rule.id, rule.label, "not_bought", items=", ".join(spec.if_bought))
        return None
    offer = frozenset(spec.offer)
    if spec.offer_by == "sku":
        had = offer & (ctx.basket_skus | _keys_since(history.skus.values(), since))
    else:
        had = offer & (ctx.basket_categories | _keys_since(history.categories.values(), since))
    if had:
        ctx.skip(rule.id, rule.label, "offer_already_bought", items=", ".join(sorted(had)))
        return None
    target = _offer_target(spec, ctx)
    reason = _said(ctx, "personal_cross_sell", items=ctx.item_names(bought))
    offer_made = _make_offer(
        rule, spec, ctx, target, reference=_average_receipt(history, ctx), reason=reason
    )
    if wanted & _bought_since(history, since):
        return offer_made  # bought before this basket too: a refund of it takes nothing away
    lines = sorted({p for key in bought for p in ctx.basket_positions.get(key, ())})
    coupon = replace(offer_made.coupon, earned_lines=tuple(lines))
    return replace(offer_made, coupon=coupon)


def _winback(
    rule: CompiledRule, spec: PersonalRule, history: CustomerHistory, ctx: PersonalContext
) -> _Offer | None:
    if history.last_purchase_at is None:
        ctx.skip(rule.id, rule.label, "no_previous_purchase")
        return None
    away = (ctx.today - _local_date(history.last_purchase_at, ctx.tz)).days
    if away < spec.inactive_days:
        ctx.skip(rule.id, rule.label, "not_inactive", days=away, inactive=spec.inactive_days)
        return None
    reason = _said(ctx, "personal_winback", days=away)
    return _make_offer(
        rule,
        spec,
        ctx,
        _offer_target(spec, ctx),
        reference=_average_receipt(history, ctx),
        reason=reason,
    )


def _birthday(
    rule: CompiledRule, spec: PersonalRule, history: CustomerHistory, ctx: PersonalContext
) -> _Offer | None:
    customer = ctx.customer
    assert customer is not None
    if customer.birthday is None:
        ctx.skip(rule.id, rule.label, "no_birthday")
        return None
    window = _birthday_window(customer.birthday, ctx.today, spec.days_before, spec.days_after)
    if window is None:
        ctx.skip(
            rule.id,
            rule.label,
            "not_birthday_window",
            before=spec.days_before,
            after=spec.days_after,
        )
        return None
    last = history.last_issued.get(rule.id)
    if last is not None and _local_date(last, ctx.tz) >= window:
        ctx.skip(rule.id, rule.label, "birthday_already_issued")
        return None
    reason = _said(ctx, "personal_birthday")
    return _make_offer(
        rule,
        spec,
        ctx,
        _offer_target(spec, ctx),
        reference=_average_receipt(history, ctx),
        reason=reason,
    )


_TRIGGERS: dict[
    str, Callable[[CompiledRule, PersonalRule, CustomerHistory, PersonalContext], _Offer | None]
] = {
    "favourite": _favourite,
    "replenish": _replenish,
    "cross_sell": _cross_sell,
    "winback": _winback,
    "birthday": _birthday,
}


# -- helpers ----------------------------------------------------------------------------------


def _make_offer(
    rule: CompiledRule,
    spec: PersonalRule,
    ctx: PersonalContext,
    target: _Target,
    *,
    reference: int,
    reason: str,
    valid_from: datetime | None = None,
) -> _Offer:
    """The coupon and its estimated value: `amount_off`, or `percent_off` of `reference` (what
    the customer usually spends on the goods, or per receipt)."""
    start = valid_from or ctx.now
    if spec.amount_off is not None:
        value = spec.amount_off
    else:
        value = percent_of(max(reference, 0), spec.percent_off or 0)
    label = rule.label.replace("{item}", target.item_name) if target.item_name else rule.label
    coupon = CouponToIssue(
        rule_id=rule.id,
        label=label,
        amount_off=spec.amount_off,
        percent_off=spec.percent_off,
        min_subtotal=spec.min_subtotal,
        valid_from=start,
        expires_at=coupon_expiry(start, spec.valid_days, ctx.tz),
        skus=target.skus,
        categories=target.categories,
        trigger=spec.trigger,
        reason=reason,
        stack_group=spec.coupon_stack_group or None,
    )
    return _Offer(rule, spec, value, coupon)


def _item_target(by: str, item: ItemHistory, ctx: PersonalContext) -> _Target:
    if by == "sku":
        return _Target(skus=(item.key,), item_name=item.name)
    return _Target(categories=(item.key,), item_name=ctx.category_names.get(item.key, item.name))


def _offer_target(spec: PersonalRule, ctx: PersonalContext) -> _Target:
    goods = tuple(sorted(spec.offer))
    if spec.offer_by == "sku":
        name = ", ".join(spec.offer)
        return _Target(skus=goods, item_name=name)
    return _Target(categories=goods, item_name=ctx.item_names(spec.offer))


def _goods_allowed(rule: CompiledRule, item: ItemHistory, *, is_sku: bool) -> bool:
    """`when.skus`/`categories`/`exclude_skus` narrow what favourite and replenish may pick
    (a category item is checked against `categories` only)."""
    if rule.categories is not None and item.category not in rule.categories:
        return False
    if is_sku:
        if rule.skus is not None and item.key not in rule.skus:
            return False
        if item.key in rule.exclude_skus:
            return False
    return True


def _bought_since(history: CustomerHistory, since: date) -> frozenset[str]:
    return _keys_since(history.skus.values(), since) | _keys_since(
        history.categories.values(), since
    )


def _keys_since(items: Iterable[ItemHistory], since: date) -> frozenset[str]:
    return frozenset(item.key for item in items if item.days and item.days[-1] >= since)


def _average_receipt(history: CustomerHistory, ctx: PersonalContext) -> int:
    if history.visits:
        return history.spend // history.visits
    return ctx.after_item


def _median_days(gaps: list[int]) -> int:
    """The median gap in whole days (half-up between the two middle values)."""
    ordered = sorted(gaps)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle] + 1) // 2


def _birthday_window(birthday: date, today: date, before: int, after: int) -> date | None:
    """The first day of the birthday window `today` falls in, or None."""
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            occurrence = birthday.replace(year=year)
        except ValueError:  # 29 February in a common year: celebrated on the 28th
            occurrence = date(year, 2, 28)
        start = occurrence - timedelta(days=before)
        if start <= today <= occurrence + timedelta(days=after):
            return start
    return None


def _local_date(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def _said(ctx: PersonalContext, code: str, **params: Any) -> str:
    return reason_text(code, ctx.locale, **params)
