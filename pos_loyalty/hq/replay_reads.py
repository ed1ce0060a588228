"""What a dry run reads, in time order and in batches: the sales, the ledger, each sale's lines
(as a basket, and as purchase history), the customers, the coupons the sales presented, and the
coupons as each program being compared would have written them. Reads only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from pos_loyalty.coupons.campaigns import CampaignCoupon, rule_coupon
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.coupons.service import snapshot
from pos_loyalty.customers.models import Customer
from pos_loyalty.hq.replay_history import HistoryLine
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.inputs import BasketLine, PresentedCoupon
from pos_loyalty.sales.models import SaleTransaction, TransactionLine
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import table_of

BATCH = 2000  # sales whose lines are read in one query


def sales(uow: UnitOfWork) -> Iterator[Any]:
    tx = table_of(SaleTransaction)
    query = sa.select(
        tx.c.id,
        tx.c.customer_id,
        tx.c.created_at,
        tx.c.total,
        tx.c.points_burned,
        tx.c.stamps,
        tx.c.store_id,
        tx.c.lane_id,
        tx.c.status,
        tx.c.refunded_amount,
        tx.c.result,
    ).order_by(tx.c.created_at, tx.c.id)
    yield from uow.session.connection().execution_options(yield_per=BATCH).execute(query)


def ledger(uow: UnitOfWork) -> Iterator[Any]:
    le = table_of(LedgerEntry)
    query = sa.select(le.c.customer_id, le.c.points, le.c.created_at).order_by(
        le.c.created_at, le.c.id
    )
    yield from uow.session.connection().execution_options(yield_per=BATCH).execute(query)


def lines(
    uow: UnitOfWork, moments: Mapping[str, datetime], local_day: Callable[[datetime], date]
) -> dict[str, tuple[list[BasketLine], tuple[HistoryLine, ...]]]:
    """Each sale's lines as the basket the till sent, and as purchase history (sku, category,
    name, local day, paid); `moments` are the sales wanted, by id, with their time."""
    if not moments:
        return {}
    tl = table_of(TransactionLine)
    rows = uow.session.connection().execute(
        sa.select(
            tl.c.transaction_id,
            tl.c.sku,
            tl.c.name,
            tl.c.category,
            tl.c.qty_milli,
            tl.c.unit_price,
            tl.c.total,
        )
        .where(tl.c.transaction_id.in_(list(moments)))
        .order_by(tl.c.transaction_id, tl.c.position)
    )
    baskets: dict[str, list[BasketLine]] = defaultdict(list)
    paid: dict[str, list[HistoryLine]] = defaultdict(list)
    days: dict[str, date] = {}
    for row in rows:
        milli = int(row.qty_milli)
        qty: int | Decimal = milli // 1000 if milli % 1000 == 0 else Decimal(milli) / 1000
        sale_id = row.transaction_id
        baskets[sale_id].append(
            BasketLine(row.sku, row.name, row.category, qty, int(row.unit_price))
        )
        day = days.get(sale_id)
        if day is None:
            day = days[sale_id] = local_day(moments[sale_id])
        paid[sale_id].append((row.sku, row.category, row.name, day, int(row.total)))
    return {sale_id: (basket, tuple(paid[sale_id])) for sale_id, basket in baskets.items()}


def customers(uow: UnitOfWork) -> tuple[dict[str, Any], dict[str, frozenset[str]]]:
    conn = uow.session.connection()
    cu, cs = table_of(Customer), table_of(CustomerSegment)
    birthdays = {r.id: r.birthday for r in conn.execute(sa.select(cu.c.id, cu.c.birthday))}
    segments = {
        r.customer_id: frozenset([r.segment])
        for r in conn.execute(sa.select(cs.c.customer_id, cs.c.segment))
    }
    return birthdays, segments


def presented_codes(result: Mapping[str, Any]) -> list[str]:
    """The coupons a sale applied, as it recorded them (rejected ones stay rejected)."""
    return [c["code"] for c in (result.get("coupons") or {}).get("applied", ())]


def coupons_by_code(uow: UnitOfWork, codes: Iterable[str]) -> dict[str, Coupon]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {c.code: c for c in uow.session.exec(select(Coupon).where(col(Coupon.code).in_(wanted)))}


class CouponTerms:
    """The coupons a sale presented, as a program would have written them: a coupon of one of
    its rules carries that rule's terms as the program states them (so a changed coupon value
    shows its cost); a coupon of a rule the compared programs dropped was never issued; a
    coupon of no rule, or of a rule neither compared program knows, is presented as issued."""

    def __init__(self, rules: CompiledRules, compared: Iterable[CompiledRules]) -> None:
        self._terms: dict[str, CampaignCoupon | None] = {
            r.id: rule_coupon(r) for r in rules.config.rules
        }
        self._known = {r.id for program in compared for r in program.config.rules}

    def presented(self, codes: Iterable[str], found: Mapping[str, Coupon]) -> list[PresentedCoupon]:
        out: list[PresentedCoupon] = []
        for code in codes:
            coupon = found.get(code)
            if coupon is None:
                continue  # gone from the coupons table (erased): nothing to replay
            rule_id = coupon.rule_id
            if rule_id is None or (rule_id not in self._terms and rule_id not in self._known):
                out.append(PresentedCoupon(code, snapshot(coupon)))
                continue
            terms = self._terms.get(rule_id)
            if terms is None:
                continue  # this program has no such coupon, so the customer never had it
            out.append(
                PresentedCoupon(
                    code,
                    replace(
                        snapshot(coupon),
                        amount_off=terms.amount_off,
                        percent_off=terms.percent_off,
                        min_subtotal=terms.min_subtotal,
                        stack_group=terms.stack_group,
                    ),
                )
            )
        return out
