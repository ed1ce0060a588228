"""A store's figures over a period: sales, discounts, points issued and burned, coupons.

The back office shows today's; `/metrics` exports the all-time totals (Prometheus takes rates).
Every figure is an aggregate the database computes, so it is the same for every API worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.sales.models import Refund, SaleTransaction
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class Figures:
    sales: int  # committed sales
    sales_amount: int  # paid in money, minor units
    discounts: int  # minor units off, all rules and coupons
    points_value: int  # minor units paid with points
    refunds: int
    refunds_amount: int
    points_issued: int  # earned (ledger `earn` entries)
    points_burned: int  # spent (ledger `burn` entries, as a positive number)
    coupons_issued: int
    coupons_redeemed: int


def _within(
    column: Any, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def store_figures(
    *, uow: UnitOfWork, since: datetime | None = None, until: datetime | None = None
) -> Figures:
    """What the store sold and gave away in [since, until) (None: no bound), in five queries."""
    session = uow.session
    sales = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(SaleTransaction.total), 0),
            func.coalesce(func.sum(SaleTransaction.discount_total), 0),
            func.coalesce(func.sum(SaleTransaction.burn_value), 0),
        ).where(*_within(col(SaleTransaction.created_at), since, until))
    ).one()
    refunds = session.execute(
        select(func.count(), func.coalesce(func.sum(Refund.amount), 0)).where(
            *_within(col(Refund.created_at), since, until)
        )
    ).one()
    points = dict(
        session.execute(
            select(col(LedgerEntry.kind), func.coalesce(func.sum(LedgerEntry.points), 0))
            .where(
                col(LedgerEntry.kind).in_([EntryKind.EARN.value, EntryKind.BURN.value]),
                *_within(col(LedgerEntry.created_at), since, until),
            )
            .group_by(col(LedgerEntry.kind))
        ).all()
    )
    issued = session.execute(
        select(func.count()).where(*_within(col(Coupon.created_at), since, until))
    ).scalar_one()
    redeemed = session.execute(
        select(func.count()).where(
            col(Coupon.redeemed_at).is_not(None), *_within(col(Coupon.redeemed_at), since, until)
        )
    ).scalar_one()
    return Figures(
        sales=int(sales[0]),
        sales_amount=int(sales[1]),
        discounts=int(sales[2]),
        points_value=int(sales[3]),
        refunds=int(refunds[0]),
        refunds_amount=int(refunds[1]),
        points_issued=int(points.get(EntryKind.EARN.value, 0)),
        points_burned=-int(points.get(EntryKind.BURN.value, 0)),
        coupons_issued=int(issued),
        coupons_redeemed=int(redeemed),
    )


def local_day(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The store's local calendar day holding `now`, as [start, end)."""
    start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    return start, datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=tz)
