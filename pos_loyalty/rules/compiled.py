"""Rules compiled once per bundle: sets instead of lists, windows as minutes, rules pre-sorted.

`evaluate` runs at every basket update, so everything that depends only on the configuration is
done here, once, when the bundle is loaded or activated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, tzinfo
from decimal import Decimal

from pos_loyalty.rules.budget import Budget
from pos_loyalty.rules.config import (
    AnyRule,
    DiscountRule,
    PersonalRule,
    PointsConfig,
    PointsRule,
    ReferralRule,
    RefundsConfig,
    RulesConfig,
    StampsRule,
    ThresholdRule,
    TierConfig,
    stacking_family,
)
from pos_loyalty.rules.eligibility import NO_GUARD, NoRewardsConfig, RewardGuard, compile_guard

# Evaluation levels, in order.
ITEM = 0  # discount on lines / cheapest, stamps
THRESHOLD = 1  # measured after item-level discounts
BASKET = 2  # discount on the basket, threshold amount_off now, coupons
POINTS = 3  # earned on what is paid in money
PERSONAL = 4  # coupons chosen from the customer's history, issued at commit
REFERRAL = 5  # not priced: rewarded at a referred customer's first sale (sales/referrals.py)


def _exact(value: Decimal) -> int | Decimal:
    """Integral Decimals become ints so the hot path can use integer arithmetic."""
    return int(value) if value == value.to_integral_value() else value


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: AnyRule
    id: str
    label: str
    kind: str
    level: int
    priority: int
    stack_group: str | None
    family: str
    exclusive: bool
    max_discount: int
    # conditions
    date_from: date | None
    date_until: date | None
    weekdays: frozenset[int] | None
    hours: tuple[int, int] | None
    stores: frozenset[str] | None
    tiers: frozenset[str] | None
    segments: frozenset[str] | None
    first_purchase: bool | None
    needs_customer: bool
    has_window: bool
    # The whole active window as one hashable value: bundles repeat a few campaign windows over
    # many rules, so evaluate decides each distinct window once per basket, not once per rule.
    window: tuple[
        str | None, tuple[int, int] | None, frozenset[int] | None, date | None, date | None
    ]
    has_conditions: bool  # any of window, stores, customer conditions
    min_subtotal: int
    # texts of the reasons above, joined once here rather than for every basket that misses them
    tiers_text: str
    segments_text: str
    weekdays_text: str
    # line filter
    categories: frozenset[str] | None
    skus: frozenset[str] | None
    exclude_skus: frozenset[str]
    filters_lines: bool
    # Rules with the same filter select the same lines: evaluate computes them once per basket.
    line_filter: tuple[frozenset[str] | None, frozenset[str] | None, frozenset[str]]
    # kind-specific, pre-converted
    percent: int | Decimal | None
    amount_off: int | None
    applies_to: str  # basket | lines | cheapest | stamps | threshold | points | personal
    multipliers: dict[str, int | Decimal]
    order: int = 0  # position in evaluation order, set by compile_rules
    promo_codes: frozenset[str] | None = None  # trigger = "code": normalised codes (promo.py)
    buy: int = 0  # cheapest with a quantity trigger: every `buy` units, `get` of them discounted
    get: int = 0

    @property
    def sort_key(self) -> tuple[int, str]:
        return (-self.priority, self.id)


def _compile_rule(rule: AnyRule) -> CompiledRule:
    when, active = rule.when, rule.active
    percent: int | Decimal | None = None
    amount_off: int | None = None
    exclusive, max_discount = False, 0
    applies_to: str
    multipliers: dict[str, int | Decimal] = {}
    if isinstance(rule, DiscountRule):
        level = ITEM if rule.applies_to in ("lines", "cheapest") else BASKET
        applies_to = rule.applies_to
        percent = _exact(rule.percent) if rule.percent is not None else None
        amount_off = rule.amount_off
        exclusive, max_discount = rule.exclusive, rule.max_discount
    elif isinstance(rule, StampsRule):
        level, applies_to = ITEM, "stamps"
        exclusive, max_discount = rule.exclusive, rule.max_discount
    elif isinstance(rule, ThresholdRule):
        level, applies_to = THRESHOLD, "threshold"
        amount_off = rule.reward.amount_off
        exclusive, max_discount = rule.exclusive, rule.max_discount
    elif isinstance(rule, PointsRule):
        level, applies_to = POINTS, "points"
        percent = _exact(rule.earn_percent) if rule.earn_percent is not None else None
        multipliers = {k: _exact(v) for k, v in rule.multipliers.items()}
    elif isinstance(rule, PersonalRule):
        level, applies_to = PERSONAL, "personal"
        percent = rule.percent_off
        amount_off = rule.amount_off
    elif isinstance(rule, ReferralRule):
        level, applies_to = REFERRAL, "referral"
    else:  # pragma: no cover - the union is closed; a new kind must add a branch here
        raise TypeError(f"no compiler for rule kind {type(rule).__name__}")
    promo = rule.promo if isinstance(rule, DiscountRule) else None
    budget = None if isinstance(rule, PersonalRule | ReferralRule) else rule.budget
    needs_customer = bool(
        (promo is not None and promo.per_customer > 0)
        or (budget is not None and budget.per_customer > 0)
        or when.tiers
        or when.segments
        or when.first_purchase is not None
        or isinstance(rule, StampsRule | PointsRule | PersonalRule)
    )
    has_window = bool(active.hours or active.weekdays or active.from_ or active.until)
    tiers = frozenset(when.tiers) or None
    segments = frozenset(when.segments) or None
    categories = frozenset(when.categories) or None
    skus = frozenset(when.skus) or None
    exclude = frozenset(when.exclude_skus)
    weekdays = frozenset(active.weekdays) if active.weekdays else None
    hours = active.minutes()
    return CompiledRule(
        rule=rule,
        id=rule.id,
        label=rule.label,
        kind=rule.kind,
        level=level,
        priority=rule.priority,
        stack_group=rule.stack_group,
        family=stacking_family(rule),
        exclusive=exclusive,
        max_discount=max_discount,
        date_from=active.from_,
        date_until=active.until,
        weekdays=weekdays,
        hours=hours,
        stores=frozenset(when.stores) or None,
        tiers=tiers,
        segments=segments,
        first_purchase=when.first_purchase,
        needs_customer=needs_customer,
        has_window=has_window,
        window=(active.hours, hours, weekdays, active.from_, active.until),
        has_conditions=bool(has_window or when.stores or needs_customer or promo or budget),
        min_subtotal=when.min_subtotal,
        tiers_text=", ".join(sorted(tiers or ())),
        segments_text=", ".join(sorted(segments or ())),
        weekdays_text=",".join(str(d) for d in sorted(weekdays or ())),
        categories=categories,
        skus=skus,
        exclude_skus=exclude,
        filters_lines=bool(categories or skus or exclude),
        line_filter=(skus, categories, exclude),
        percent=percent,
        amount_off=amount_off,
        applies_to=applies_to,
        multipliers=multipliers,
        promo_codes=promo.normalised if promo is not None else None,
        buy=(rule.buy or 0) if isinstance(rule, DiscountRule) else 0,
        get=(rule.get or 1) if isinstance(rule, DiscountRule) and rule.buy else 0,
    )


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """A rules bundle ready for `evaluate`; `version` is a stable hash of its content."""

    version: str
    config: RulesConfig
    points: PointsConfig
    tiers: tuple[TierConfig, ...]  # ascending min_spend
    item_rules: tuple[CompiledRule, ...]  # each level sorted by priority desc, then id
    threshold_rules: tuple[CompiledRule, ...]
    basket_rules: tuple[CompiledRule, ...]
    points_rules: tuple[CompiledRule, ...]
    tz: tzinfo | None  # when set, `now` is converted to it before checking active windows
    # Rules with a `skus` filter, indexed by sku, so a basket only visits the promotions it can
    # meet; the rest of each level stays in `*_unindexed` (both keep evaluation order).
    item_by_sku: dict[str, tuple[CompiledRule, ...]]
    item_unindexed: tuple[CompiledRule, ...]
    basket_by_sku: dict[str, tuple[CompiledRule, ...]]
    basket_unindexed: tuple[CompiledRule, ...]
    personal_rules: tuple[CompiledRule, ...] = ()
    guard: RewardGuard = NO_GUARD  # `[no_rewards]` and `[[price_floors]]`
    # `[store.category_names]`: how reasons and labels people read name a category
    category_names: Mapping[str, str] = field(default_factory=dict)
    referral_rules: tuple[CompiledRule, ...] = ()
    # The rules with a `budget` (item, threshold, basket, points levels, in that order): looked
    # up once here, as every evaluate and commit asks which of them have spent their cap.
    budgeted: tuple[tuple[CompiledRule, Budget], ...] = ()

    @property
    def rule_count(self) -> int:
        return len(self.config.rules)


def rules_version(config: RulesConfig) -> str:
    """sha256 over the canonical JSON of the section: same content, same version, any key order."""
    dumped = config.model_dump(mode="json", by_alias=True)
    # left out while unset, so a program without them keeps the version it always had
    if config.no_rewards == NoRewardsConfig():
        dumped.pop("no_rewards", None)
    if not config.price_floors:
        dumped.pop("price_floors", None)
    if config.refunds == RefundsConfig():
        dumped.pop("refunds", None)
    if not config.points.pending_days:
        dumped["points"].pop("pending_days", None)
    canonical = json.dumps(dumped, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def compile_rules(
    config: RulesConfig,
    *,
    tz: tzinfo | None = None,
    category_names: Mapping[str, str] | None = None,
) -> CompiledRules:
    """Compile once per bundle. Pass the store's time zone so windows use local time, and its
    category names so the reasons people read name categories as the store does."""
    ordered = sorted((_compile_rule(r) for r in config.rules), key=lambda c: c.sort_key)
    compiled = [replace(rule, order=index) for index, rule in enumerate(ordered)]
    item = [c for c in compiled if c.level == ITEM]
    basket = [c for c in compiled if c.level == BASKET]
    return CompiledRules(
        version=rules_version(config),
        config=config,
        points=config.points,
        tiers=tuple(sorted(config.tiers, key=lambda t: t.min_spend)),
        item_rules=tuple(item),
        threshold_rules=tuple(c for c in compiled if c.level == THRESHOLD),
        basket_rules=tuple(basket),
        points_rules=tuple(c for c in compiled if c.level == POINTS),
        tz=tz,
        item_by_sku=_index_by_sku(item),
        item_unindexed=tuple(c for c in item if c.skus is None),
        basket_by_sku=_index_by_sku(basket),
        basket_unindexed=tuple(c for c in basket if c.skus is None),
        personal_rules=tuple(c for c in compiled if c.level == PERSONAL),
        guard=compile_guard(config.no_rewards, config.price_floors),
        category_names=dict(category_names or {}),
        referral_rules=tuple(c for c in compiled if c.level == REFERRAL),
        budgeted=tuple(
            (c, budget)
            for level in (ITEM, THRESHOLD, BASKET, POINTS)
            for c in compiled
            if c.level == level and (budget := getattr(c.rule, "budget", None)) is not None
        ),
    )


def _index_by_sku(rules: list[CompiledRule]) -> dict[str, tuple[CompiledRule, ...]]:
    index: dict[str, list[CompiledRule]] = {}
    for rule in rules:
        for sku in sorted(rule.skus or ()):
            index.setdefault(sku, []).append(rule)
    return {sku: tuple(found) for sku, found in index.items()}
