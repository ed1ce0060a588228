"""Prices a basket under the loyalty rules: `evaluate(basket, customer, rules, now) -> Quote`.

Pure and deterministic: no I/O, no clock, no randomness; lines are worked on in a canonical order
(by sku, price, qty …) so the result does not depend on the order the till sent them in.

Order of work:
1. item-level money rules (discount on `lines`/`cheapest`, `stamps`) by priority desc, then id;
2. thresholds, measured on the matching lines after item-level discounts;
3. basket-level money rules (discount on `basket`, threshold `amount_off` now), then coupons;
4. points burn (capped by balance and `redeem_max_percent` of the amount due), then earn on what
   is paid in money; personal coupons (`personal.py`) chosen from the customer's history.
A stack group is decided where its first member comes in that order: every member's discount is
computed on the basket as it stands, the largest wins (ties: the earlier). An exclusive rule
only takes lines no earlier rule discounted, and no later rule touches the lines it took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from operator import attrgetter
from typing import Any

from pos_loyalty.money import (
    Qty,
    allocate,
    allocate_within,
    format_money,
    line_amount,
    percent_of,
    percent_of_floor,
    round_half_up,
)
from pos_loyalty.rules.bundles import bundle_params, bundle_parts
from pos_loyalty.rules.compiled import CompiledRule, CompiledRules
from pos_loyalty.rules.config import (
    PointsConfig,
    PointsRule,
    StampsRule,
    ThresholdRule,
    TierConfig,
)
from pos_loyalty.rules.eligibility import eligibility_notices
from pos_loyalty.rules.inputs import Basket, CouponSnapshot, CustomerSnapshot, PresentedCoupon
from pos_loyalty.rules.messages import points_word, reason_text, upsell_message
from pos_loyalty.rules.personal import PersonalContext, choose_personal_coupons
from pos_loyalty.rules.quote import (
    AppliedCoupon,
    AppliedRule,
    CouponsSummary,
    CouponToIssue,
    EarnedPoints,
    Hint,
    LineApplication,
    NotApplied,
    PointsSummary,
    Quote,
    QuoteLine,
    RejectedCoupon,
    StampProgress,
    TierStatus,
    coupon_expiry,
)

_MONEY_PARAMS = ("min_subtotal", "missing")
_WEEKDAY_NAMES = "1234567"
# attrgetter instead of lambdas for the sort and group keys taken for every rule of every basket
_ORDER = attrgetter("order")
_POS = attrgetter("pos")
_PRICE_POS = attrgetter("unit_price", "pos")
_STACK_GROUP = attrgetter("stack_group")


class _Line:
    """A basket line while the engine works on it."""

    __slots__ = (
        "amount",
        "applied",
        "burn",
        "category",
        "discount",
        "floor",
        "index",
        "locked_by",
        "pos",
        "qty",
        "sku",
        "src",
        "unit_price",
    )

    def __init__(self, index: int, src: Any, amount: int) -> None:
        self.index = index
        self.src = src
        self.sku: str = src.sku
        self.category: str = src.category
        self.qty: Qty = src.qty
        self.unit_price: int = src.unit_price
        self.amount = amount
        self.discount = 0
        self.burn = 0
        self.floor = 0  # the least the line may cost after rewards (`[[price_floors]]`)
        self.applied: list[tuple[str, int]] = []
        self.locked_by: str | None = None
        self.pos = index  # canonical position, set once the lines are sorted

    @property
    def remaining(self) -> int:
        return self.amount - self.discount

    @property
    def room(self) -> int:
        """What rewards may still take off the line without going below its price floor."""
        return max(0, self.amount - self.discount - self.burn - self.floor)


def _unit_share(remaining: int, qty: Qty, units: int) -> int:
    """What `units` whole units of a line are worth now (a weighed line under 1 counts whole)."""
    if qty <= units:
        return remaining
    if isinstance(qty, int):
        quotient = (remaining * units * 2 + qty) // (qty * 2)
        return min(remaining, quotient)
    return min(remaining, round_half_up(Decimal(remaining) * units / qty))


@dataclass(slots=True)
class _Actor:
    """Something that can discount money: a rule or a presented coupon."""

    id: str
    label: str
    kind: str
    stack_group: str | None
    exclusive: bool
    max_discount: int
    applies_to: str  # basket | lines | cheapest | stamps
    percent: int | Decimal | None
    amount_off: int | None
    eligible: list[_Line]
    rule: CompiledRule | None = None
    coupon_code: str | None = None
    free_units: int = 0  # stamps: units due
    granted_units: int = 0  # stamps: units placed on lines by the last proposal
    stamp_count: int = 0
    stamp_every: int = 0


@dataclass(slots=True)
class _Proposal:
    """A discount an actor would give; a basket spread is only computed for the one applied."""

    parts: list[tuple[_Line, int]] | None  # None: spread `total` over `spread_over` when applied
    total: int
    capped: bool
    reason: str | None = None
    params: dict[str, Any] | None = None
    spread_over: list[_Line] | None = None
    floor_cuts: list[tuple[_Line, int]] | None = None  # what price floors took back, per line

    def line_parts(self) -> list[tuple[_Line, int]]:
        if self.parts is None:
            lines = self.spread_over or []
            amounts = allocate(self.total, [ln.amount - ln.discount for ln in lines])
            self.parts = [(ln, a) for ln, a in zip(lines, amounts, strict=True) if a > 0]
        return self.parts


class _Evaluation:
    """One evaluate call's working state."""

    def __init__(
        self,
        basket: Basket,
        customer: CustomerSnapshot | None,
        rules: CompiledRules,
        now: datetime,
        locale: str,
        currency: str,
        explain: bool,
    ) -> None:
        self.explain = explain
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("evaluate needs an aware `now` (with a time zone)")
        self.basket = basket
        self.customer = customer
        self.rules = rules
        self.now = now
        self.locale = locale
        self.currency = currency
        local = now.astimezone(rules.tz) if rules.tz is not None else now
        self.today = local.date()
        self.minute = local.hour * 60 + local.minute
        originals = [
            _Line(i, line, line_amount(line.unit_price, line.qty))
            for i, line in enumerate(basket.lines)
        ]
        self.original_order = originals
        self.guard = guard = rules.guard
        # `[no_rewards]` goods are out of the program: every step below sees only `self.lines`.
        self.protected: list[_Line] = []
        rewardable = originals
        if guard.excluded_skus or guard.excluded_categories:
            rewardable = []
            for line in originals:
                excluded = guard.excludes(line.sku, line.category)
                (self.protected if excluded else rewardable).append(line)
        self.earning_protected = self.protected if guard.earn_points else []
        self.lines = sorted(  # int and Decimal quantities compare exactly with each other
            rewardable, key=lambda ln: (ln.sku, ln.unit_price, ln.qty, ln.category, ln.src.name)
        )
        if guard.has_floors:
            for line in self.lines:
                line.floor = guard.floor_amount(line.sku, line.category, line.qty)
        self.has_floors = any(line.floor for line in self.lines)
        self.floor_cuts: list[tuple[str, str, _Line, int]] = []
        self.by_category: dict[str, list[_Line]] = {}
        self.by_sku: dict[str, list[_Line]] = {}
        for line in self.lines:
            self.by_category.setdefault(line.category, []).append(line)
            self.by_sku.setdefault(line.sku, []).append(line)
        for pos, line in enumerate(self.lines):
            line.pos = pos
        self.subtotal = sum(line.amount for line in self.lines)  # what the program sees
        self.basket_subtotal = self.subtotal + sum(line.amount for line in self.protected)
        self.tier = _tier_for(rules.tiers, customer.lifetime_spend) if customer else None
        self.skipped: list[tuple[str, str, str, dict[str, Any]]] = []
        self.applied: list[AppliedRule] = []
        self.applied_coupons: list[AppliedCoupon] = []
        self.rejected: list[RejectedCoupon] = []
        self.stamps_granted: dict[str, int] = {}
        # Per-basket memos of what many rules share (see CompiledRule.window and .line_filter).
        self._windows: dict[Any, tuple[str, dict[str, Any]] | None] = {}
        self._selected: dict[Any, list[_Line]] = {}
        self.limits_reached: Mapping[str, str] = {}  # issue 16: rule id → budget cap reached

    # -- conditions ---------------------------------------------------------------------------

    def skip(self, actor_id: str, label: str, code: str, **params: Any) -> None:
        if self.explain:
            self.skipped.append((actor_id, label, code, params))

    def candidates(
        self,
        every_rule: tuple[CompiledRule, ...],
        by_sku: dict[str, tuple[CompiledRule, ...]],
        unindexed: tuple[CompiledRule, ...],
    ) -> Sequence[CompiledRule]:
        """The rules of a level worth visiting: all when explaining (each needs its reason),
        else only sku promotions whose skus are in the basket, plus every rule without skus."""
        if self.explain or not by_sku:
            return every_rule
        found = {rule.order: rule for sku in self.by_sku for rule in by_sku.get(sku, ())}
        if not found:
            return unindexed
        return sorted([*unindexed, *found.values()], key=_ORDER)

    def static_reason(self, rule: CompiledRule) -> tuple[str, dict[str, Any]] | None:
        """Why a rule cannot apply to this basket at all (time, store, customer), or None."""
        if not rule.has_conditions:
            return None
        if rule.has_window:
            window = rule.window
            if window in self._windows:
                reason = self._windows[window]
            else:
                reason = self._windows[window] = self._window_reason(rule)
            if reason:
                return reason
        if rule.stores is not None and self.basket.store_id not in rule.stores:
            return "wrong_store", {}
        # issue 16: a promo-code rule needs its code in the basket (rules/promo.py); a rule
        # whose budget is spent stops (rules/budget.py, counted by sales/budgets.py)
        if rule.promo_codes is not None and not rule.promo_codes & self.basket.promo_codes:
            return "code_not_presented", {}
        if rule.id in self.limits_reached:
            return "budget_reached", {"limit": self.limits_reached[rule.id]}
        if rule.needs_customer:
            customer = self.customer
            if customer is None:
                return "no_customer", {}
            if rule.tiers is not None and self.tier not in rule.tiers:
                return "tier_not_met", {"tiers": rule.tiers_text, "tier": self.tier}
            if rule.segments is not None and not (rule.segments & customer.segments):
                return "segment_not_met", {"segments": rule.segments_text}
            if rule.first_purchase is True and not customer.first_purchase:
                return "first_purchase_only", {}
            if rule.first_purchase is False and customer.first_purchase:
                return "not_for_first_purchase", {}
        return None

    def _window_reason(self, rule: CompiledRule) -> tuple[str, dict[str, Any]] | None:
        day = self.today
        if rule.hours is not None:
            start, end = rule.hours
            minute = self.minute
            if start < end:
                inside = start <= minute < end
            elif minute >= start:
                inside = True
            elif minute < end:
                inside, day = True, day - timedelta(days=1)  # the night window began yesterday
            else:
                inside = False
            if not inside:
                return "not_active_hours", {"hours": rule.rule.active.hours}
        if rule.weekdays is not None and day.isoweekday() not in rule.weekdays:
            return "not_active_weekday", {"days": rule.weekdays_text}
        if (rule.date_from and day < rule.date_from) or (rule.date_until and day > rule.date_until):
            return "not_active_date", {
                "start": rule.date_from or "…",
                "end": rule.date_until or "…",
            }
        return None

    def gate(
        self, rule: CompiledRule, measured: int, *, need_lines: bool = True, earning: bool = False
    ) -> list[_Line] | None:
        """The lines `rule` may work on, or None when it cannot apply (the reason noted when
        explaining): its conditions (time, store, customer), `measured` against its minimum
        subtotal, and its line filters (with `need_lines`, selecting nothing skips it; with
        `earning`, a points rule's lines, see `earning_lines`)."""
        reason = self.static_reason(rule)
        if reason:
            self.skip(rule.id, rule.label, reason[0], **reason[1])
            return None
        if measured < rule.min_subtotal:
            self.skip(
                rule.id,
                rule.label,
                "below_min_subtotal",
                min_subtotal=rule.min_subtotal,
                missing=rule.min_subtotal - measured,
            )
            return None
        eligible = self.earning_lines(rule) if earning else self.eligible_lines(rule)
        if need_lines and not eligible:
            self.skip(rule.id, rule.label, "no_matching_lines")
            return None
        return eligible

    def eligible_lines(self, rule: CompiledRule) -> list[_Line]:
        """Lines the rule's line filters select, in canonical order (one list per filter: rules
        that filter alike share it, and `run_money_steps` relies on that)."""
        if not rule.filters_lines:
            return self.lines
        selected = self._selected.get(rule.line_filter)
        if selected is None:
            selected = self._selected[rule.line_filter] = self._select_lines(rule)
        return selected

    def _select_lines(self, rule: CompiledRule) -> list[_Line]:
        buckets: list[list[_Line]]
        if rule.skus is not None:
            buckets = [self.by_sku[sku] for sku in rule.skus if sku in self.by_sku]
        elif rule.categories is not None:
            buckets = [self.by_category[c] for c in rule.categories if c in self.by_category]
        else:
            buckets = [self.lines]
        if not buckets:
            return []
        found = (
            buckets[0]
            if len(buckets) == 1
            else sorted((ln for bucket in buckets for ln in bucket), key=_POS)
        )
        if rule.skus is not None and rule.categories is not None:
            found = [ln for ln in found if ln.category in rule.categories]
        if rule.exclude_skus:
            found = [ln for ln in found if ln.sku not in rule.exclude_skus]
        return found

    def earning_lines(self, rule: CompiledRule) -> list[_Line]:
        """A points rule's lines: its eligible lines, plus `[no_rewards]` goods the rule selects
        when those still earn points (`earn_points = true`)."""
        eligible = self.eligible_lines(rule)
        if not self.earning_protected:
            return eligible
        extra = [ln for ln in self.earning_protected if _rule_selects(rule, ln)]
        return [*eligible, *extra] if extra else eligible

    def money_actor(self, rule: CompiledRule, eligible: list[_Line]) -> _Actor:
        return _Actor(  # positional: this runs for every candidate rule of every basket
            rule.id,
            rule.label,
            rule.kind,
            rule.stack_group,
            rule.exclusive,
            rule.max_discount,
            "basket" if rule.applies_to == "threshold" else rule.applies_to,
            rule.percent,
            rule.amount_off,
            eligible,
            rule,
        )

    # -- money --------------------------------------------------------------------------------

    def usable_lines(self, actor: _Actor) -> list[_Line]:
        """The actor's lines it can still discount: not locked by an exclusive rule, not free
        already, and for an exclusive actor not discounted by anyone."""
        if actor.exclusive:
            return [
                ln
                for ln in actor.eligible
                if ln.locked_by is None and ln.amount > ln.discount and not ln.applied
            ]
        return [ln for ln in actor.eligible if ln.locked_by is None and ln.amount > ln.discount]

    def propose(
        self, actor: _Actor, usable: list[_Line] | None = None, base: int | None = None
    ) -> _Proposal:
        """The discount `actor` would give on the basket as it stands now (nothing changes).

        `usable` and `base` (what those lines are worth now) may come from the caller, who shares
        them between the members of a stack group that select the same lines."""
        if usable is None:
            usable = self.usable_lines(actor)
        if not usable:
            return self._why_nothing(actor)
        parts: list[tuple[_Line, int]]
        kind = actor.applies_to
        if kind == "basket":
            if base is None:
                base = sum([ln.amount - ln.discount for ln in usable])
            if actor.percent is not None:
                total = percent_of(base, actor.percent)
            else:
                total = min(actor.amount_off or 0, base)
            if total == 0:
                return _Proposal([], 0, False, "nothing_to_discount", {})
            capped = bool(actor.max_discount and total > actor.max_discount)
            if capped:
                total = actor.max_discount
            if self.has_floors:
                return self._spread_within_floors(actor, usable, total, capped)
            return _Proposal(None, total, capped, spread_over=usable)
        elif kind == "lines":
            percent = actor.percent
            if isinstance(percent, int):  # half-up of r × p / 100 in integers (r, p ≥ 0)
                parts = []
                for ln in usable:
                    amount = ((ln.amount - ln.discount) * percent * 2 + 100) // 200
                    if amount > 0:
                        parts.append((ln, amount))
            elif percent is not None:
                parts = [(ln, percent_of(ln.amount - ln.discount, percent)) for ln in usable]
                parts = [(ln, amount) for ln, amount in parts if amount > 0]
            else:
                off = actor.amount_off or 0
                parts = [
                    (ln, min(ln.amount - ln.discount, line_amount(off, ln.qty))) for ln in usable
                ]
                parts = [(ln, amount) for ln, amount in parts if amount > 0]
        elif kind == "cheapest" and actor.rule is not None and actor.rule.buy:
            # issue 16: buy N get M (rules/bundles.py)
            parts, units = bundle_parts(
                actor.rule, usable, actor.percent, actor.amount_off, _unit_share
            )
            if not parts:
                return _Proposal(
                    [], 0, False, "bundle_not_complete", bundle_params(actor.rule, units)
                )
        elif kind == "cheapest":
            line = min(usable, key=_PRICE_POS)
            unit = _unit_share(line.amount - line.discount, line.qty, 1)
            if actor.percent is not None:
                value = percent_of(unit, actor.percent)
            else:
                value = min(actor.amount_off or 0, unit)
            parts = [(line, value)] if value > 0 else []
        else:  # stamps
            if actor.free_units == 0:
                params = {"count": actor.stamp_count, "every": actor.stamp_every}
                return _Proposal([], 0, False, "no_free_unit_yet", params)
            parts = [(ln, amount) for ln, amount in self._free_units(actor, usable) if amount > 0]
        floor_cuts = None
        if self.has_floors:
            parts, floor_cuts = _cut_at_floors(parts)
        total = sum([amount for _, amount in parts])
        if total == 0:
            if floor_cuts:
                return _Proposal([], 0, False, "price_floor", {}, floor_cuts=floor_cuts)
            return _Proposal([], 0, False, "nothing_to_discount", {})
        capped = False
        if actor.max_discount and total > actor.max_discount:
            capped = True
            amounts = allocate(actor.max_discount, [amount for _, amount in parts])
            parts = [(ln, a) for (ln, _), a in zip(parts, amounts, strict=True) if a > 0]
            total = actor.max_discount
        return _Proposal(parts, total, capped, floor_cuts=floor_cuts)

    def _spread_within_floors(
        self, actor: _Actor, usable: list[_Line], total: int, capped: bool
    ) -> _Proposal:
        """A basket discount on goods with price floors: a percent is cut line by line at the
        floor; an amount goes to the lines with room left, and is cut only when none has any."""
        weights = [ln.amount - ln.discount for ln in usable]
        if actor.percent is not None:
            parts, floor_cuts = _cut_at_floors(
                list(zip(usable, allocate(total, weights), strict=True))
            )
        else:
            rooms = [ln.room for ln in usable]
            given = min(total, sum(rooms))
            amounts = allocate_within(given, weights, rooms)
            parts = list(zip(usable, amounts, strict=True))
            floor_cuts = _floor_cut_lines(usable, total - given)
        parts = [(ln, a) for ln, a in parts if a > 0]
        given = sum([a for _, a in parts])
        if given == 0:
            return _Proposal([], 0, False, "price_floor", {}, floor_cuts=floor_cuts)
        return _Proposal(parts, given, capped, floor_cuts=floor_cuts)

    def _free_units(self, actor: _Actor, usable: list[_Line]) -> list[tuple[_Line, int]]:
        """Stamps: the due free units go to the cheapest qualifying whole units."""
        due = actor.free_units
        parts = []
        for line in sorted((ln for ln in usable if isinstance(ln.qty, int)), key=_PRICE_POS):
            if due == 0:
                break
            units = min(due, int(line.qty))
            parts.append((line, _unit_share(line.amount - line.discount, line.qty, units)))
            due -= units
        actor.granted_units = actor.free_units - due
        return parts

    def _why_nothing(self, actor: _Actor) -> _Proposal:
        if not actor.eligible:
            return _Proposal([], 0, False, "no_matching_lines", {})
        lockers = sorted({ln.locked_by for ln in actor.eligible if ln.locked_by})
        if lockers:
            return _Proposal([], 0, False, "excluded_by", {"by": ", ".join(lockers)})
        if actor.exclusive:
            takers = sorted({rid for ln in actor.eligible for rid, _ in ln.applied})
            if takers:
                return _Proposal([], 0, False, "lines_taken", {"by": ", ".join(takers)})
        return _Proposal([], 0, False, "nothing_to_discount", {})

    def apply(self, actor: _Actor, proposal: _Proposal) -> None:
        actor_id, exclusive = actor.id, actor.exclusive
        for line, amount in proposal.line_parts():
            line.discount += amount
            line.applied.append((actor_id, amount))
            if exclusive:
                line.locked_by = actor_id
        if actor.applies_to == "stamps":
            self.stamps_granted[actor.id] = actor.granted_units
        self.note_floor_cuts(actor, proposal)
        kind = "coupon" if actor.coupon_code is not None else actor.kind
        self.applied.append(
            AppliedRule(actor.id, actor.label, kind, proposal.total, proposal.capped)
        )
        if actor.coupon_code is not None:
            self.applied_coupons.append(
                AppliedCoupon(actor.coupon_code, actor.id, actor.label, proposal.total)
            )

    def note_floor_cuts(self, actor: _Actor, proposal: _Proposal) -> None:
        """Remember what price floors took from the actor's discount, for the quote's notices."""
        if proposal.floor_cuts:
            self.floor_cuts.extend((actor.id, actor.label, ln, c) for ln, c in proposal.floor_cuts)

    def refuse(self, actor: _Actor, code: str, params: dict[str, Any]) -> None:
        if actor.coupon_code is not None:
            self.reject_coupon(actor.coupon_code, code, **params)
        elif self.explain:
            self.skipped.append((actor.id, actor.label, code, params))

    def run_money_steps(self, actors: list[_Actor]) -> None:
        """Apply actors in order; a stack group is decided where its first member comes."""
        for step in _group_steps(actors, _STACK_GROUP):
            if len(step) == 1:
                actor = step[0]
                proposal = self.propose(actor)
                if proposal.total > 0:
                    self.apply(actor, proposal)
                else:
                    self.note_floor_cuts(actor, proposal)
                    self.refuse(
                        actor, proposal.reason or "nothing_to_discount", proposal.params or {}
                    )
                continue
            # The basket does not change while a group's members propose, and members that
            # filter alike share one eligible list (eligible_lines): their usable lines and
            # what those are worth are worked out once (a bundle's card discounts, one per tier).
            shared: dict[tuple[int, bool], tuple[list[_Line], int]] = {}
            proposals = []
            for actor in step:
                key = (id(actor.eligible), actor.exclusive)
                if key not in shared:
                    usable = self.usable_lines(actor)
                    shared[key] = (usable, sum([ln.amount - ln.discount for ln in usable]))
                proposals.append((actor, self.propose(actor, *shared[key])))
            best_actor, best = max(proposals, key=lambda p: p[1].total)  # first max wins ties
            if best.total > 0:
                self.apply(best_actor, best)
            for actor, proposal in proposals:
                if actor is best_actor and best.total > 0:
                    continue
                if best.total > 0:
                    group = actor.stack_group
                    self.refuse(actor, "lost_stack_group", {"group": group, "by": best_actor.id})
                else:
                    self.refuse(
                        actor, proposal.reason or "nothing_to_discount", proposal.params or {}
                    )

    # -- coupons ------------------------------------------------------------------------------

    def reject_coupon(self, code: str, reason: str, **params: Any) -> None:
        message = reason_text(reason, self.locale, **self._render(params))
        self.rejected.append(RejectedCoupon(code, reason, message))

    def coupon_actors(self, presented: Sequence[PresentedCoupon], after_item: int) -> list[_Actor]:
        actors: list[_Actor] = []
        seen: set[str] = set()
        for item in sorted(presented, key=lambda p: p.code):
            coupon = item.coupon
            if item.code in seen:
                self.reject_coupon(item.code, "duplicate")
                continue
            seen.add(item.code)
            if coupon is None or item.problem:
                self.reject_coupon(item.code, item.problem or "unknown")
                continue
            problem = self._coupon_problem(coupon, after_item)
            if problem:
                self.reject_coupon(item.code, problem[0], **problem[1])
                continue
            eligible = self._coupon_lines(coupon)
            if not eligible and self.protected:
                self.reject_coupon(item.code, "no_rewards_goods", goods=self.guard.label)
                continue
            actors.append(
                _Actor(
                    id=f"coupon:{coupon.code}",
                    label=coupon.label,
                    kind="coupon",
                    stack_group=coupon.stack_group,
                    exclusive=False,
                    max_discount=0,
                    applies_to="basket",
                    percent=coupon.percent_off,
                    amount_off=coupon.amount_off,
                    eligible=eligible,
                    coupon_code=item.code,
                )
            )
        return actors

    def _coupon_problem(
        self, coupon: CouponSnapshot, after_item: int
    ) -> tuple[str, dict[str, Any]] | None:
        if coupon.valid_from is not None and self.now < coupon.valid_from:
            return "not_yet_valid", {"start": coupon.valid_from.isoformat()}
        if coupon.expires_at is not None and self.now >= coupon.expires_at:
            return "expired", {}
        if coupon.owner_customer_id is not None and (
            self.customer is None or self.customer.id != coupon.owner_customer_id
        ):
            return "not_owned", {}
        if after_item < coupon.min_subtotal:
            return "below_min_subtotal", {
                "min_subtotal": coupon.min_subtotal,
                "missing": coupon.min_subtotal - after_item,
            }
        if coupon.amount_off is None and coupon.percent_off is None:
            return "nothing_to_discount", {}
        return None

    def _coupon_lines(self, coupon: CouponSnapshot) -> list[_Line]:
        if not coupon.skus and not coupon.categories:
            return self.lines
        return [
            ln
            for ln in self.lines
            if (not coupon.skus or ln.sku in coupon.skus)
            and (not coupon.categories or ln.category in coupon.categories)
        ]

    # -- rendering ------------------------------------------------------------------------------

    def money(self, amount: int) -> str:
        return format_money(amount, self.currency, self.locale)

    def _render(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params:  # most reasons (no matching lines, wrong store …) have no values
            return params
        out = dict(params)
        for key in _MONEY_PARAMS:
            if isinstance(out.get(key), int):
                out[key] = self.money(out[key])
        if "tier" in out and out["tier"] is None:
            out["tier"] = "—"
        return out

    def not_applied(self) -> tuple[NotApplied, ...]:
        return tuple(
            NotApplied(rule_id, label, code, reason_text(code, self.locale, **self._render(params)))
            for rule_id, label, code, params in self.skipped
        )


def _cut_at_floors(
    parts: list[tuple[_Line, int]],
) -> tuple[list[tuple[_Line, int]], list[tuple[_Line, int]] | None]:
    """Each part held to what its line may still lose above its price floor, and what was cut."""
    kept: list[tuple[_Line, int]] = []
    cuts: list[tuple[_Line, int]] = []
    for line, amount in parts:
        allowed = min(amount, line.room)
        if allowed < amount:
            cuts.append((line, amount - allowed))
        kept.append((line, allowed))
    return kept, cuts or None


def _floor_cut_lines(lines: list[_Line], cut: int) -> list[tuple[_Line, int]] | None:
    """An amount that found no room: charged to the floored lines that stopped it."""
    if cut <= 0:
        return None
    floored = [ln for ln in lines if ln.floor]
    held = [ln.amount - ln.discount - ln.room for ln in floored]
    shares = allocate(min(cut, sum(held)), held) if floored else []
    return [(ln, share) for ln, share in zip(floored, shares, strict=True) if share > 0] or None


def _rule_selects(rule: CompiledRule, line: _Line) -> bool:
    """`_select_lines` for one line (used on the few `[no_rewards]` lines that earn points)."""
    return (
        (rule.skus is None or line.sku in rule.skus)
        and (rule.categories is None or line.category in rule.categories)
        and not (rule.exclude_skus and line.sku in rule.exclude_skus)
    )


def _group_steps(actors: Iterable[Any], group_of: Callable[[Any], str | None]) -> list[list[Any]]:
    """Split ordered actors into steps: alone, or with the rest of their stack group."""
    steps: list[list[Any]] = []
    by_group: dict[str, list[Any]] = {}
    for actor in actors:
        group = group_of(actor)
        if group is None:
            steps.append([actor])
        elif group in by_group:
            by_group[group].append(actor)
        else:
            by_group[group] = [actor]
            steps.append(by_group[group])
    return steps


def _tier_for(tiers: tuple[TierConfig, ...], spend: int) -> str | None:
    name = None
    for tier in tiers:
        if spend >= tier.min_spend:
            name = tier.name
        else:
            break
    return name


def tier_status(tiers: tuple[TierConfig, ...], spend: int) -> TierStatus:
    """The tier lifetime spend reached, the next one and what is missing for it."""
    current = _tier_for(tiers, spend)
    for tier in tiers:
        if tier.min_spend > spend:
            return TierStatus(current, tier.name, tier.min_spend - spend)
    return TierStatus(current, None, None)


def _paid_by_category(lines: list[_Line]) -> dict[str, int]:
    """What the lines of each category are paid in money (lines paid nothing left out)."""
    paid_by_category: dict[str, int] = {}
    for line in lines:
        paid = line.amount - line.discount - line.burn
        if paid > 0:
            paid_by_category[line.category] = paid_by_category.get(line.category, 0) + paid
    return paid_by_category


def _earn(rule: CompiledRule, paid_by_category: dict[str, int], point_value: int) -> int:
    """Points a `points` rule gives on what its lines are paid in money (always rounded down).

    Multipliers go by category, so the base is summed per category, not per line (exact: ints,
    or Decimal multipliers on whole minor units)."""
    base: int | Decimal = 0
    multipliers = rule.multipliers
    for category, paid in paid_by_category.items():
        base += paid * multipliers.get(category, 1)
    spec = rule.rule
    assert isinstance(spec, PointsRule)
    if spec.earn_per is not None:
        return int(base // spec.earn_per) * spec.points_per_step
    percent = rule.percent if rule.percent is not None else 0
    if isinstance(base, int) and isinstance(percent, int):
        return (base * percent) // (100 * point_value)
    value = Decimal(base) * Decimal(percent) / Decimal(100 * point_value)
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def evaluate(
    basket: Basket,
    customer: CustomerSnapshot | None,
    rules: CompiledRules,
    now: datetime,
    *,
    coupons: Sequence[PresentedCoupon] = (),
    explain: bool = False,
    locale: str = "ru_RU",
    currency: str = "RUB",
    limits_reached: Mapping[str, str] | None = None,
) -> Quote:
    """Price `basket` for `customer` under `rules` at `now` (aware). Pure and deterministic.
    `limits_reached`: rule id → the budget cap it reached (those rules do not apply)."""
    ev = _Evaluation(basket, customer, rules, now, locale, currency, explain)
    ev.limits_reached = limits_reached or {}  # issue 16

    # 1. item-level money rules
    item_actors: list[_Actor] = []
    for rule in ev.candidates(rules.item_rules, rules.item_by_sku, rules.item_unindexed):
        eligible = ev.gate(rule, ev.subtotal)
        if eligible is not None:
            item_actors.append(ev.money_actor(rule, eligible))
    stamps: list[StampProgress] = []
    line_stamps: dict[int, dict[str, int]] = {}  # by basket index: units each rule counted
    for actor in item_actors:
        if actor.applies_to == "stamps":
            progress = _stamp_progress(actor, customer)
            stamps.append(progress)
            if progress.advance:
                for ln in actor.eligible:
                    if isinstance(ln.qty, int):
                        line_stamps.setdefault(ln.index, {})[actor.id] = ln.qty
    ev.run_money_steps(item_actors)
    for progress in stamps:
        progress.free_units = ev.stamps_granted.get(progress.rule_id, 0)
    after_item = sum(ln.amount - ln.discount for ln in ev.lines)

    # 2. thresholds
    reached_now: list[_Actor] = []
    rewards: list[tuple[CompiledRule, int, list[_Line]]] = []  # (rule, value, measured lines)
    hints: list[Hint] = []
    for rule in rules.threshold_rules:
        eligible = ev.gate(rule, after_item, need_lines=False)
        if eligible is None:
            continue
        if eligible is ev.lines:
            measured = after_item
        else:
            measured = sum(ln.amount - ln.discount for ln in eligible)
        spec = rule.rule
        assert isinstance(spec, ThresholdRule)
        target, reward = spec.min_subtotal, spec.reward
        if measured < target:
            missing = target - measured
            ev.skip(
                rule.id, rule.label, "threshold_not_reached", min_subtotal=target, missing=missing
            )
            # no hint of points to a basket without a customer: reaching the spend earns nothing
            if missing <= spec.hint_within and (reward.points is None or customer is not None):
                hints.append(Hint("upsell", rule.id, missing, _upsell_text(ev, missing, reward)))
            continue
        if reward.amount_off is not None:
            reached_now.append(ev.money_actor(rule, eligible))
        elif reward.points is not None and customer is None:
            ev.skip(rule.id, rule.label, "no_customer")
        else:
            value = _reward_value(reward, measured, rules.points.point_value_minor)
            rewards.append((rule, value, eligible))

    # 3. basket-level money rules, then coupons
    basket_actors: list[_Actor] = []
    for rule in ev.candidates(rules.basket_rules, rules.basket_by_sku, rules.basket_unindexed):
        eligible = ev.gate(rule, after_item)
        if eligible is not None:
            basket_actors.append(ev.money_actor(rule, eligible))
    if reached_now:
        basket_actors = sorted(
            basket_actors + reached_now, key=lambda a: (-a.rule.priority if a.rule else 0, a.id)
        )
    basket_actors.extend(ev.coupon_actors(coupons, after_item))
    ev.run_money_steps(basket_actors)

    discount_total = sum(ln.discount for ln in ev.lines)
    due = ev.subtotal - discount_total

    # 4. points: burn, then earn on what is paid in money
    points_config = rules.points
    point_value = points_config.point_value_minor
    requested = max(0, basket.points_to_redeem)
    balance = max(0, customer.points_balance) if customer else 0
    burn, limited_by = 0, None
    if requested:
        if customer is None:
            limited_by = "no_customer"
        elif not ev.lines:
            limited_by = "no_rewards"
        else:
            by_percent = percent_of_floor(due, points_config.redeem_max_percent) // point_value
            burn = min(requested, balance, by_percent)
            if burn < requested:
                limited_by = "balance" if balance <= by_percent else "redeem_max_percent"
            by_floor = sum([ln.room for ln in ev.lines]) // point_value if ev.has_floors else burn
            if by_floor < burn:
                burn, limited_by = by_floor, "price_floor"
    burn_value = burn * point_value
    if burn_value:
        weights = [ln.amount - ln.discount for ln in ev.lines]
        if ev.has_floors:
            shares = allocate_within(burn_value, weights, [ln.room for ln in ev.lines])
        else:
            shares = allocate(burn_value, weights)
        for line, share in zip(ev.lines, shares, strict=True):
            line.burn = share

    earned: list[EarnedPoints] = []
    to_issue: list[CouponToIssue] = []
    for step in _group_steps(rewards, lambda r: r[0].stack_group):
        best_rule, _, measured_lines = max(step, key=lambda r: r[1])
        for rule, _value, _lines in step:
            if rule is not best_rule:
                ev.skip(
                    rule.id, rule.label, "lost_stack_group", group=rule.stack_group, by=best_rule.id
                )
        spec = best_rule.rule
        assert isinstance(spec, ThresholdRule)
        reward = spec.reward
        if reward.points is not None:
            earned.append(EarnedPoints(best_rule.id, best_rule.label, reward.points))
        else:
            coupon = reward.coupon
            assert coupon is not None
            to_issue.append(
                CouponToIssue(
                    rule_id=best_rule.id,
                    label=coupon.label or best_rule.label,
                    amount_off=coupon.amount_off,
                    percent_off=coupon.percent_off,
                    min_subtotal=coupon.min_subtotal,
                    valid_from=now,
                    expires_at=coupon_expiry(now, coupon.valid_days, rules.tz or now.tzinfo or UTC),
                    stack_group=coupon.stack_group or None,
                    bearer=coupon.bearer,
                    earned_lines=tuple(sorted(ln.index for ln in measured_lines)),
                    earned_min_subtotal=spec.min_subtotal,
                )
            )

    if rules.personal_rules:
        to_issue.extend(_personal(ev, rules, after_item))

    points_candidates: list[tuple[CompiledRule, int]] = []
    paid_everywhere = (
        _paid_by_category([*ev.lines, *ev.earning_protected]) if rules.points_rules else {}
    )
    for rule in rules.points_rules:
        eligible = ev.gate(rule, after_item, earning=True)
        if eligible is None:
            continue
        paid = paid_everywhere if eligible is ev.lines else _paid_by_category(eligible)
        points_candidates.append((rule, _earn(rule, paid, point_value)))
    for step in _group_steps(points_candidates, lambda r: r[0].stack_group):
        best_rule, best_points = max(step, key=lambda r: r[1])
        for rule, points in step:
            if best_points > 0 and rule is not best_rule:
                ev.skip(
                    rule.id, rule.label, "lost_stack_group", group=rule.stack_group, by=best_rule.id
                )
            elif points == 0:
                ev.skip(rule.id, rule.label, "no_points_earned")
        if best_points > 0:
            earned.append(EarnedPoints(best_rule.id, best_rule.label, best_points))
    earn = sum(e.points for e in earned)

    expires = None
    if earn and points_config.expire_days:
        expires = now + timedelta(days=points_config.expire_days)
    points = PointsSummary(
        earn=earn,
        burn=burn,
        balance=balance,
        balance_after=balance - burn + earn,
        burn_requested=requested,
        burn_limited_by=limited_by,
        burn_limited_message=_burn_message(limited_by, burn, points_config, locale),
        burn_value=burn_value,
        point_value_minor=point_value,
        earned=tuple(earned),
        earn_expires_at=expires,
        earn_available_at=(
            now + timedelta(days=points_config.pending_days)
            if earn and points_config.pending_days
            else None
        ),
    )
    quote_lines = tuple(
        QuoteLine(
            ln.sku,
            ln.src.name,
            ln.category,
            ln.qty,
            ln.unit_price,
            ln.amount,
            ln.discount,
            ln.burn,
            ln.amount - ln.discount - ln.burn,
            tuple([LineApplication(rid, amount) for rid, amount in ln.applied])
            if ln.applied
            else (),
            line_stamps.get(ln.index, {}) if line_stamps else {},
        )
        for ln in ev.original_order
    )
    return Quote(
        rules_version=rules.version,
        currency=currency,
        evaluated_at=now,
        customer_id=customer.id if customer else None,
        lines=quote_lines,
        subtotal=ev.basket_subtotal,
        discount_total=discount_total,
        total=ev.basket_subtotal - discount_total - burn_value,
        applied=tuple(ev.applied),
        points=points,
        coupons=CouponsSummary(
            applied=tuple(ev.applied_coupons),
            rejected=tuple(ev.rejected),
            to_issue=tuple(to_issue),
        ),
        hints=tuple(hints),
        tier=tier_status(rules.tiers, customer.lifetime_spend) if customer else None,
        stamps=tuple(stamps),
        not_applied=ev.not_applied() if explain else None,
        notices=eligibility_notices(
            ev.protected, ev.lines, ev.floor_cuts, ev.guard, ev.money, locale
        ),
    )


def _personal(ev: _Evaluation, rules: CompiledRules, after_item: int) -> list[CouponToIssue]:
    """Coupons chosen from the customer's history (`kind = "personal"`), see personal.py."""
    context = PersonalContext(
        customer=ev.customer,
        basket_skus=frozenset(ev.by_sku),
        basket_categories=frozenset(ev.by_category),
        after_item=after_item,
        now=ev.now,
        today=ev.today,
        tz=rules.tz or ev.now.tzinfo or UTC,
        locale=ev.locale,
        static_reason=ev.static_reason,
        skip=ev.skip,
        category_names=rules.category_names,
        basket_positions={
            key: tuple(ln.index for ln in lines)
            for index in (ev.by_sku, ev.by_category)
            for key, lines in index.items()
        },
    )
    return choose_personal_coupons(rules.personal_rules, context)


def _stamp_progress(actor: _Actor, customer: CustomerSnapshot | None) -> StampProgress:
    """Count this basket's whole qualifying units onto the customer's counter; set units due."""
    assert actor.rule is not None and customer is not None  # stamps need a customer
    spec = actor.rule.rule
    assert isinstance(spec, StampsRule)
    every = spec.every
    before = customer.stamps.get(actor.id, 0) % every
    units = sum(int(ln.qty) for ln in actor.eligible if isinstance(ln.qty, int))
    actor.free_units = (before + units) // every
    actor.stamp_count, actor.stamp_every = (before + units) % every, every
    return StampProgress(
        rule_id=actor.id,
        label=actor.label,
        count=(before + units) % every,
        every=every,
        free_units=actor.free_units,
        advance=units,
    )


def _burn_message(
    limited_by: str | None, accepted: int, points: PointsConfig, locale: str
) -> str | None:
    """What the cashier can say when fewer points were redeemed than asked."""
    if limited_by is None:
        return None
    if limited_by == "no_customer":
        return reason_text("no_customer", locale)
    return reason_text(
        f"burn_{limited_by}",
        locale,
        accepted=points_word(accepted, locale),
        percent=points.redeem_max_percent,
    )


def _reward_value(reward: Any, measured: int, point_value: int) -> int:
    """A reward's worth in minor units, to pick the best of a stack group."""
    if reward.points is not None:
        return int(reward.points) * point_value
    coupon = reward.coupon
    if coupon.amount_off is not None:
        return int(coupon.amount_off)
    return percent_of(measured, coupon.percent_off)


def _upsell_text(ev: _Evaluation, missing: int, reward: Any) -> str:
    if reward.coupon is not None:
        coupon = reward.coupon
        if coupon.amount_off is not None:
            return upsell_message(
                ev.locale, ev.money(missing), coupon_amount=ev.money(coupon.amount_off)
            )
        return upsell_message(ev.locale, ev.money(missing), coupon_percent=coupon.percent_off)
    if reward.amount_off is not None:
        return upsell_message(ev.locale, ev.money(missing), amount_off=ev.money(reward.amount_off))
    return upsell_message(ev.locale, ev.money(missing), points=reward.points)
