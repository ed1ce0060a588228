"""What refunds took back from a sale, rule by rule, for the results report and the dry run.

A refund takes each line back in proportion to the units returned (`sales/refund.py`): the
line's discount by rule, its points burn and the money paid for it; points earned are reversed
in proportion to the money refunded. Here the same shares are taken from a typed quote (the one
the sale recorded, or the one a dry run priced), so a rule's figures come net of refunds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from pos_loyalty.money import qty_to_milli
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.models import RefundLine
from pos_loyalty.sales.refund import cumulative_slice
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import table_of


@dataclass(frozen=True, slots=True)
class Refunded:
    """What refunds returned of one sale: thousandths of a unit by basket position, and whether
    the sale was refunded whole (its status `refunded`)."""

    milli: Mapping[int, int]
    full: bool


@dataclass(slots=True)
class TakenBack:
    """A quote's share that refunds took back: discount by the rule id the quote names (a
    presented coupon as `coupon:<code>`), points earned by rule, points burned, money paid."""

    discount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    burn: int = 0
    paid: int = 0


def taken_back(quote: Quote, refunded: Refunded) -> TakenBack:
    """The part of `quote` the refunds took back, in the refund's own proportions."""
    out = TakenBack()
    if refunded.full:
        for applied in quote.applied:
            out.discount[applied.rule_id] += applied.amount
        for earned in quote.points.earned:
            out.points[earned.rule_id] += earned.points
        out.burn, out.paid = quote.points.burn, quote.total
        return out
    burn_value = 0
    for position, line in enumerate(quote.lines):
        part = refunded.milli.get(position, 0)
        if not part:
            continue
        whole = qty_to_milli(line.qty)
        part = min(part, whole)
        out.paid += cumulative_slice(line.total, 0, part, whole)
        burn_value += cumulative_slice(line.burn, 0, part, whole)
        for share in line.applied:
            out.discount[share.rule_id] += cumulative_slice(share.amount, 0, part, whole)
    basis = quote.total if quote.total > 0 else quote.subtotal
    if basis:
        for earned in quote.points.earned:
            out.points[earned.rule_id] += earned.points * out.paid // basis
    if quote.points.burn_value:
        out.burn = quote.points.burn * burn_value // quote.points.burn_value
    return out


def refunded_lines(*, uow: UnitOfWork, sale_ids: Iterable[str]) -> dict[str, dict[int, int]]:
    """Per sale (of those given that had refunds): thousandths refunded by basket position."""
    ids = list(sale_ids)
    if not ids:
        return {}
    rl = table_of(RefundLine)
    rows = uow.session.connection().execute(
        sa.select(rl.c.transaction_id, rl.c.position, sa.func.sum(rl.c.qty_milli))
        .where(rl.c.transaction_id.in_(ids))
        .group_by(rl.c.transaction_id, rl.c.position)
    )
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for sale_id, position, milli in rows:
        out[sale_id][int(position)] = int(milli)
    return dict(out)
