"""Dry run: replay the stored baskets of past sales under a proposed program and compare, rule
by rule, with what the sales recorded (or with another program replayed the same way), each sale
with its customer's state as it was then.

It only reads. Each customer's balance, lifetime spend, first purchase, stamp counters and
purchase history are rebuilt by walking the ledger and the sales in time order, so a sale from
March is priced with March's balance and March's history (personal offers, `replay_history`).
The coupons each sale presented are presented again, with the terms the replayed program gives
its coupons (`replay_reads.CouponTerms`): a changed coupon value or personal offer shows its
cost. Figures are net of refunds (`refunded`): a sale refunded whole counts for nothing, a part
refunded takes its share of discount and points back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from pos_loyalty.hq.refunded import Refunded, TakenBack, refunded_lines, taken_back
from pos_loyalty.hq.replay_history import CouponHoldings, PurchaseHistories
from pos_loyalty.hq.replay_reads import (
    BATCH,
    CouponTerms,
    coupons_by_code,
    customers,
    ledger,
    lines,
    presented_codes,
    sales,
)
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.engine import evaluate
from pos_loyalty.rules.inputs import Basket, CustomerSnapshot
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.models import SaleTransaction, TransactionStatus
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import table_of

__all__ = ["BATCH", "DryRun", "ProgramFigures", "RuleComparison", "RuleFigures", "dry_run"]


@dataclass(slots=True)
class RuleFigures:
    """What one rule did (or would do) to the replayed sales."""

    baskets: int = 0
    discount: int = 0  # minor units
    points: int = 0
    coupons: int = 0

    def liability(self, point_value_minor: int) -> int:
        return self.points * point_value_minor


@dataclass(slots=True)
class ProgramFigures:
    point_value_minor: int
    rules: dict[str, RuleFigures] = field(default_factory=lambda: defaultdict(RuleFigures))

    def add(
        self,
        quote: Quote,
        issuer: Mapping[str, str | None] | None = None,
        refunded: Refunded | None = None,
    ) -> bool:
        """A priced sale; a presented coupon's discount counts for the rule that issued it
        (`issuer`: code → rule id), and what `refunded` took back comes off. True if any rule
        touched it."""
        if refunded is not None and refunded.full:
            return False  # refunded whole: it gave nothing in the end
        by_code = issuer or {}
        coupons = {c.rule_id: by_code.get(c.code) or c.rule_id for c in quote.coupons.applied}
        taken = taken_back(quote, refunded) if refunded is not None else None
        return self._count(
            [(coupons.get(a.rule_id, a.rule_id), a.rule_id, a.amount) for a in quote.applied],
            [(e.rule_id, e.points) for e in quote.points.earned],
            [c.rule_id for c in quote.coupons.to_issue],
            taken,
        )

    def add_recorded(
        self,
        result: dict[str, Any],
        issuer: Mapping[str, str | None] | None = None,
        refunded: Refunded | None = None,
    ) -> bool:
        """What a committed sale recorded (its quote's terms); True if any rule touched it."""
        if refunded is not None:
            return self.add(Quote.from_stored(result), issuer, refunded)
        by_code = issuer or {}
        coupons = {
            c["rule_id"]: by_code.get(c["code"]) or c["rule_id"]
            for c in (result.get("coupons") or {}).get("applied", ())
        }
        return self._count(
            [
                (coupons.get(a["rule_id"], a["rule_id"]), a["rule_id"], int(a["amount"]))
                for a in result.get("applied", ())
            ],
            [(e["rule_id"], int(e["points"])) for e in result.get("points", {}).get("earned", ())],
            [c["rule_id"] for c in result.get("coupons", {}).get("to_issue", ())],
            None,
        )

    def _count(
        self,
        discounts: list[tuple[str, str, int]],  # (rule it counts for, rule id quoted, amount)
        points: list[tuple[str, int]],
        coupons: list[str],
        taken: TakenBack | None,
    ) -> bool:
        touched: set[str] = set()
        for rule_id, quoted, amount in discounts:
            back = taken.discount.get(quoted, 0) if taken is not None else 0
            self.rules[rule_id].discount += amount - back
            touched.add(rule_id)
        for rule_id, earned in points:
            back = taken.points.get(rule_id, 0) if taken is not None else 0
            self.rules[rule_id].points += earned - back
            touched.add(rule_id)
        for rule_id in coupons:
            self.rules[rule_id].coupons += 1
            touched.add(rule_id)
        for rule_id in touched:
            self.rules[rule_id].baskets += 1
        return bool(touched)

    def total(self) -> RuleFigures:
        out = RuleFigures()
        for figures in self.rules.values():
            out.discount += figures.discount
            out.points += figures.points
            out.coupons += figures.coupons
        return out


@dataclass(frozen=True, slots=True)
class RuleComparison:
    rule_id: str
    label: str
    active: RuleFigures
    proposed: RuleFigures


@dataclass(frozen=True, slots=True)
class DryRun:
    sales: int
    since: datetime
    active_version: str
    proposed_version: str
    active_point_value: int
    proposed_point_value: int
    rules: list[RuleComparison]
    active_total: RuleFigures
    proposed_total: RuleFigures
    active_baskets: int  # touched by any rule
    proposed_baskets: int
    # False: the active side is what the sales recorded; True: `active` replayed like `proposed`
    active_replayed: bool = False
    refunded_sales: int = 0  # of `sales`, refunded whole (they count for nothing)

    def to_dict(self) -> dict[str, Any]:
        def figures(f: RuleFigures, value: int) -> dict[str, int]:
            return {
                "baskets": f.baskets,
                "discount": f.discount,
                "points": f.points,
                "liability": f.liability(value),
                "coupons": f.coupons,
            }

        return {
            "sales": self.sales,
            "since": self.since.isoformat(),
            "active_version": self.active_version,
            "proposed_version": self.proposed_version,
            "active_source": "replayed" if self.active_replayed else "recorded",
            "refunded_sales": self.refunded_sales,
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "label": r.label,
                    "active": figures(r.active, self.active_point_value),
                    "proposed": figures(r.proposed, self.proposed_point_value),
                }
                for r in self.rules
            ],
            "total": {
                "active": figures(self.active_total, self.active_point_value),
                "proposed": figures(self.proposed_total, self.proposed_point_value),
            },
        }


@dataclass(slots=True)
class _CustomerState:
    balance: int = 0
    lifetime_spend: int = 0
    bought: bool = False
    stamps: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Side:
    """One program being replayed: its rules, coupon terms, personal coupons and figures."""

    rules: CompiledRules
    terms: CouponTerms
    holdings: CouponHoldings
    figures: ProgramFigures
    touched: int = 0


def dry_run(
    *,
    uow: UnitOfWork,
    active: CompiledRules,
    proposed: CompiledRules,
    since: datetime,
    locale: str,
    currency: str,
    progress: Callable[[int, int], None] | None = None,
    replay_active: bool = False,
    tz: tzinfo | None = None,
) -> DryRun:
    """Price every sale since `since` under the proposed program, with the customer as they
    were, beside what each sale recorded (`active` names the comparison), or, with
    `replay_active`, beside the same sales priced under `active`. `tz` (default: the programs'
    own, else UTC) sets the store-local days of the purchase history."""
    tx = table_of(SaleTransaction)
    total = int(
        uow.session.connection()
        .execute(sa.select(sa.func.count()).select_from(tx).where(tx.c.created_at >= since))
        .scalar_one()
    )
    zone = tz or proposed.tz or active.tz or UTC
    compared = (active, proposed)
    sides = [
        _Side(
            p,
            CouponTerms(p, compared),
            CouponHoldings(p),
            ProgramFigures(p.points.point_value_minor),
        )
        for p in ((active, proposed) if replay_active else (proposed,))
    ]
    recorded = ProgramFigures(active.points.point_value_minor)
    for side in sides:
        side.holdings.seed(uow, since)
    window = max(side.holdings.window_days for side in sides)
    histories = PurchaseHistories(window_days=window, tz=zone)
    history_from = since - timedelta(days=window + 2)
    birthdays, segments = customers(uow)
    states: dict[str, _CustomerState] = defaultdict(_CustomerState)
    entries = ledger(uow)
    pending_entry = next(entries, None)
    recorded_touched = done = refunded_whole = 0
    batch: list[sa.Row[Any]] = []

    def replay(rows: list[sa.Row[Any]]) -> None:
        nonlocal pending_entry, done, recorded_touched, refunded_whole
        wanted = {r.id: r.created_at for r in rows if r.created_at >= history_from}
        sale_lines = lines(uow, wanted, histories.local_day) if wanted else {}
        replayed = [r for r in rows if r.created_at >= since]
        refunds = refunded_lines(
            uow=uow,
            sale_ids=[r.id for r in replayed if r.status != TransactionStatus.COMPLETED.value],
        )
        codes = {r.id: presented_codes(r.result or {}) for r in replayed}
        found = coupons_by_code(uow, (c for sale_codes in codes.values() for c in sale_codes))
        issuer = {code: coupon.rule_id for code, coupon in found.items()}
        for sale in rows:
            while pending_entry is not None and pending_entry.created_at < sale.created_at:
                states[pending_entry.customer_id].balance += int(pending_entry.points)
                pending_entry = next(entries, None)
            state = states[sale.customer_id] if sale.customer_id else None
            basket_lines, history_lines = sale_lines.get(sale.id, ([], ()))
            if sale.created_at >= since:
                full = sale.status == TransactionStatus.REFUNDED.value
                refunded = (
                    Refunded(refunds.get(sale.id, {}), full)
                    if sale.status != TransactionStatus.COMPLETED.value
                    else None
                )
                refunded_whole += full
                if not replay_active:
                    recorded_touched += recorded.add_recorded(sale.result or {}, issuer, refunded)
                basket = Basket(
                    sale.store_id,
                    sale.lane_id or "",
                    basket_lines,
                    points_to_redeem=int(sale.points_burned),
                )
                for side in sides:
                    snapshot = None
                    if state is not None:
                        snapshot = CustomerSnapshot(
                            id=sale.customer_id,
                            lifetime_spend=state.lifetime_spend,
                            points_balance=max(state.balance, 0),
                            segments=segments.get(sale.customer_id, frozenset()),
                            first_purchase=not state.bought,
                            stamps=dict(state.stamps),
                            birthday=birthdays.get(sale.customer_id),
                            history=(
                                histories.history(
                                    sale.customer_id,
                                    sale.created_at,
                                    side.holdings.window_days,
                                    side.holdings,
                                )
                                if side.holdings.window_days
                                else None
                            ),
                        )
                    quote = evaluate(
                        basket,
                        snapshot,
                        side.rules,
                        sale.created_at,
                        coupons=side.terms.presented(codes[sale.id], found),
                        locale=locale,
                        currency=currency,
                    )
                    side.touched += side.figures.add(quote, issuer, refunded)
                    if sale.customer_id:
                        side.holdings.issued(sale.customer_id, quote)
                        side.holdings.spent(
                            sale.customer_id,
                            [r for c in codes[sale.id] if (r := issuer.get(c))],
                            sale.created_at,
                        )
                done += 1
                if progress is not None and done % 500 == 0:
                    progress(done, total)
            if state is not None:
                state.lifetime_spend += int(sale.total)
                state.bought = True
                for rule_id, advance in (sale.stamps or {}).items():
                    state.stamps[rule_id] = state.stamps.get(rule_id, 0) + int(advance)
                if window and sale.status != TransactionStatus.REFUNDED.value:
                    paid = int(sale.total) - int(sale.refunded_amount or 0)
                    histories.add(sale.customer_id, sale.created_at, paid, history_lines)

    for sale in sales(uow):
        batch.append(sale)
        if len(batch) >= BATCH:
            replay(batch)
            batch = []
    replay(batch)
    if progress is not None:
        progress(done, total)
    baseline = sides[0].figures if replay_active else recorded
    baseline_touched = sides[0].touched if replay_active else recorded_touched
    return _compare(
        active=active,
        proposed=proposed,
        since=since,
        sales_count=done,
        figures=(baseline, sides[-1].figures),
        touched=(baseline_touched, sides[-1].touched),
        active_replayed=replay_active,
        refunded_sales=refunded_whole,
    )


def _compare(
    *,
    active: CompiledRules,
    proposed: CompiledRules,
    since: datetime,
    sales_count: int,
    figures: tuple[ProgramFigures, ProgramFigures],
    touched: tuple[int, int],
    active_replayed: bool,
    refunded_sales: int,
) -> DryRun:
    labels = {c.id: c.label for c in (*proposed.config.rules, *active.config.rules)}
    order = [r.id for r in proposed.config.rules] + [
        r.id for r in active.config.rules if r.id not in {p.id for p in proposed.config.rules}
    ]
    return DryRun(
        sales=sales_count,
        since=since,
        active_version=active.version,
        proposed_version=proposed.version,
        active_point_value=active.points.point_value_minor,
        proposed_point_value=proposed.points.point_value_minor,
        rules=[
            RuleComparison(
                rule_id,
                labels.get(rule_id, rule_id),
                figures[0].rules.get(rule_id, RuleFigures()),
                figures[1].rules.get(rule_id, RuleFigures()),
            )
            for rule_id in order
        ],
        active_total=_with_baskets(figures[0].total(), touched[0]),
        proposed_total=_with_baskets(figures[1].total(), touched[1]),
        active_baskets=touched[0],
        proposed_baskets=touched[1],
        active_replayed=active_replayed,
        refunded_sales=refunded_sales,
    )


def _with_baskets(figures: RuleFigures, baskets: int) -> RuleFigures:
    figures.baskets = baskets
    return figures
