"""Dry run: replay the stored baskets of past sales under a proposed program and under the one
that ran, each sale with its customer's state as it was then, and compare rule by rule.

It only reads. Each customer's balance, lifetime spend, first purchase and stamp counters are
rebuilt by walking the ledger and the sales in time order, so a sale from March is priced with
March's balance, not today's. Personal offers need the customer's full purchase history and are
not replayed (they show as 0); presented coupons are not replayed either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from pos_loyalty.customers.models import Customer
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.engine import evaluate
from pos_loyalty.rules.inputs import Basket, BasketLine, CustomerSnapshot
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.models import SaleTransaction, TransactionLine
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.storage import UnitOfWork

BATCH = 2000  # sales whose lines are read in one query


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

    def add(self, quote: Quote) -> None:
        touched: set[str] = set()
        for applied in quote.applied:
            self.rules[applied.rule_id].discount += applied.amount
            touched.add(applied.rule_id)
        for earned in quote.points.earned:
            self.rules[earned.rule_id].points += earned.points
            touched.add(earned.rule_id)
        for issue in quote.coupons.to_issue:
            self.rules[issue.rule_id].coupons += 1
            touched.add(issue.rule_id)
        for rule_id in touched:
            self.rules[rule_id].baskets += 1

    def add_recorded(self, result: dict[str, Any]) -> bool:
        """What a committed sale recorded (its quote's terms); True if any rule touched it."""
        touched: set[str] = set()
        for applied in result.get("applied", []):
            if applied.get("kind") == "coupon":
                continue  # presented coupons are not replayed, so not compared either
            self.rules[applied["rule_id"]].discount += int(applied["amount"])
            touched.add(applied["rule_id"])
        for earned in result.get("points", {}).get("earned", []):
            self.rules[earned["rule_id"]].points += int(earned["points"])
            touched.add(earned["rule_id"])
        for issue in result.get("coupons", {}).get("to_issue", []):
            self.rules[issue["rule_id"]].coupons += 1
            touched.add(issue["rule_id"])
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


def _sales(uow: UnitOfWork) -> Iterator[Any]:
    tx = SaleTransaction.__table__  # type: ignore[attr-defined]
    query = sa.select(
        tx.c.id,
        tx.c.customer_id,
        tx.c.created_at,
        tx.c.total,
        tx.c.points_burned,
        tx.c.stamps,
        tx.c.store_id,
        tx.c.lane_id,
        tx.c.result,
    ).order_by(tx.c.created_at, tx.c.id)
    yield from uow.session.connection().execution_options(yield_per=BATCH).execute(query)


def _ledger(uow: UnitOfWork) -> Iterator[Any]:
    le = LedgerEntry.__table__  # type: ignore[attr-defined]
    query = sa.select(le.c.customer_id, le.c.points, le.c.created_at).order_by(
        le.c.created_at, le.c.id
    )
    yield from uow.session.connection().execution_options(yield_per=BATCH).execute(query)


def _lines(uow: UnitOfWork, ids: list[str]) -> dict[str, list[BasketLine]]:
    tl = TransactionLine.__table__  # type: ignore[attr-defined]
    rows = uow.session.connection().execute(
        sa.select(
            tl.c.transaction_id,
            tl.c.sku,
            tl.c.name,
            tl.c.category,
            tl.c.qty_milli,
            tl.c.unit_price,
        )
        .where(tl.c.transaction_id.in_(ids))
        .order_by(tl.c.transaction_id, tl.c.position)
    )
    out: dict[str, list[BasketLine]] = defaultdict(list)
    for row in rows:
        milli = int(row.qty_milli)
        qty: int | Decimal = milli // 1000 if milli % 1000 == 0 else Decimal(milli) / 1000
        out[row.transaction_id].append(
            BasketLine(row.sku, row.name, row.category, qty, int(row.unit_price))
        )
    return out


def _customers(uow: UnitOfWork) -> tuple[dict[str, Any], dict[str, frozenset[str]]]:
    conn = uow.session.connection()
    cu, cs = Customer.__table__, CustomerSegment.__table__  # type: ignore[attr-defined]
    birthdays = {r.id: r.birthday for r in conn.execute(sa.select(cu.c.id, cu.c.birthday))}
    segments = {
        r.customer_id: frozenset([r.segment])
        for r in conn.execute(sa.select(cs.c.customer_id, cs.c.segment))
    }
    return birthdays, segments


def dry_run(
    *,
    uow: UnitOfWork,
    active: CompiledRules,
    proposed: CompiledRules,
    since: datetime,
    locale: str,
    currency: str,
    progress: Callable[[int, int], None] | None = None,
) -> DryRun:
    """Price every sale since `since` under the proposed program, with the customer as they
    were, beside what each sale recorded; `active` (the running program) names the comparison."""
    tx = SaleTransaction.__table__  # type: ignore[attr-defined]
    total = int(
        uow.session.connection()
        .execute(sa.select(sa.func.count()).select_from(tx).where(tx.c.created_at >= since))
        .scalar_one()
    )
    birthdays, segments = _customers(uow)
    states: dict[str, _CustomerState] = defaultdict(_CustomerState)
    ledger = _ledger(uow)
    pending_entry = next(ledger, None)
    figures = (
        ProgramFigures(active.points.point_value_minor),
        ProgramFigures(proposed.points.point_value_minor),
    )
    touched = [0, 0]
    done = 0
    batch: list[sa.Row[Any]] = []

    def replay(rows: list[sa.Row[Any]]) -> None:
        nonlocal pending_entry, done
        lines = _lines(uow, [r.id for r in rows if r.created_at >= since])
        for sale in rows:
            while pending_entry is not None and pending_entry.created_at < sale.created_at:
                states[pending_entry.customer_id].balance += int(pending_entry.points)
                pending_entry = next(ledger, None)
            state = states[sale.customer_id] if sale.customer_id else None
            if sale.created_at >= since:
                snapshot = (
                    CustomerSnapshot(
                        id=sale.customer_id,
                        lifetime_spend=state.lifetime_spend,
                        points_balance=max(state.balance, 0),
                        segments=segments.get(sale.customer_id, frozenset()),
                        first_purchase=not state.bought,
                        stamps=dict(state.stamps),
                        birthday=birthdays.get(sale.customer_id),
                    )
                    if state is not None
                    else None
                )
                basket = Basket(
                    sale.store_id,
                    sale.lane_id or "",
                    lines.get(sale.id, []),
                    points_to_redeem=int(sale.points_burned),
                )
                touched[0] += figures[0].add_recorded(sale.result or {})
                quote = evaluate(
                    basket, snapshot, proposed, sale.created_at, locale=locale, currency=currency
                )
                figures[1].add(quote)
                touched[1] += bool(quote.applied or quote.points.earned or quote.coupons.to_issue)
                done += 1
                if progress is not None and done % 500 == 0:
                    progress(done, total)
            if state is not None:
                state.lifetime_spend += int(sale.total)
                state.bought = True
                for rule_id, advance in (sale.stamps or {}).items():
                    state.stamps[rule_id] = state.stamps.get(rule_id, 0) + int(advance)

    for sale in _sales(uow):
        batch.append(sale)
        if len(batch) >= BATCH:
            replay(batch)
            batch = []
    replay(batch)
    if progress is not None:
        progress(done, total)
    labels = {c.id: c.label for c in (*proposed.config.rules, *active.config.rules)}
    order = [r.id for r in proposed.config.rules] + [
        r.id for r in active.config.rules if r.id not in {p.id for p in proposed.config.rules}
    ]
    return DryRun(
        sales=done,
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
    )


def _with_baskets(figures: RuleFigures, baskets: int) -> RuleFigures:
    figures.baskets = baskets
    return figures
