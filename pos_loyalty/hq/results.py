"""Results: what each rule actually did over a period, from the sales as they were committed
(each sale keeps what its quote applied): baskets, discount, points issued and burned, coupons
issued and redeemed, and the revenue of the baskets it touched. "What did the promotion cost,
and what did it bring." Net of refunds (`hq/refunded.py`): a sale refunded whole counts for no
rule, a partly refunded one gives back its share of discount, points and revenue, and coupons
a refund withdrew are not counted as issued."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa

from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.hq.refunded import Refunded, TakenBack, refunded_lines, taken_back
from pos_loyalty.moments import local_moment
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.models import Refund, SaleTransaction, TransactionStatus
from pos_loyalty.storage import UnitOfWork

BATCH = 2000  # sales whose refunds are read in one query


@dataclass(slots=True)
class RuleResult:
    rule_id: str
    baskets: int = 0
    discount: int = 0  # minor units
    points_issued: int = 0
    points_burned: int = 0  # in the baskets the rule touched
    coupons_issued: int = 0
    coupons_redeemed: int = 0  # of those issued in the period, by now
    revenue: int = 0  # paid in money, baskets the rule touched

    @property
    def redemption_rate(self) -> float:
        return self.coupons_redeemed / self.coupons_issued if self.coupons_issued else 0.0


@dataclass(frozen=True, slots=True)
class ResultsReport:
    since: datetime
    until: datetime
    sales: int
    revenue: int  # paid in money, net of refunds
    rules: list[RuleResult]
    refunded: int = 0  # money refunded on the period's sales

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "sales": self.sales,
            "revenue": self.revenue,
            "refunded": self.refunded,
            "rules": [
                {**asdict(r), "redemption_rate": round(r.redemption_rate, 4)} for r in self.rules
            ],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["rule_id", "baskets", "discount", "points_issued", "points_burned",
             "coupons_issued", "coupons_redeemed", "redemption_rate", "revenue"]
        )  # fmt: skip
        for r in self.rules:
            writer.writerow(
                [r.rule_id, r.baskets, r.discount, r.points_issued, r.points_burned,
                 r.coupons_issued, r.coupons_redeemed, f"{r.redemption_rate:.4f}", r.revenue]
            )  # fmt: skip
        return out.getvalue()


def results_report(*, uow: UnitOfWork, since: datetime, until: datetime) -> ResultsReport:
    """Per rule, over [since, until): what the committed sales say it did."""
    conn = uow.session.connection()
    tx = SaleTransaction.__table__  # type: ignore[attr-defined]
    by_rule: dict[str, RuleResult] = {}

    def rule(rule_id: str) -> RuleResult:
        return by_rule.setdefault(rule_id, RuleResult(rule_id))

    coupons = Coupon.__table__  # type: ignore[attr-defined]
    # A redeemed coupon's discount counts for the rule that issued it.
    issuer: dict[str, str] = {
        code: rule_id
        for code, rule_id in conn.execute(
            sa.select(coupons.c.code, coupons.c.rule_id).where(
                coupons.c.redeemed_at >= since, coupons.c.rule_id.is_not(None)
            )
        )
    }
    sales = revenue = refunded_money = 0
    query = sa.select(
        tx.c.id, tx.c.total, tx.c.points_burned, tx.c.status, tx.c.refunded_amount, tx.c.result
    ).where(tx.c.created_at >= since, tx.c.created_at < until)
    for row, refunds in _with_refunds(uow, conn.execution_options(yield_per=BATCH).execute(query)):
        sales += 1
        refunded_money += int(row.refunded_amount)
        paid = int(row.total) - int(row.refunded_amount)
        revenue += paid
        if row.status == TransactionStatus.REFUNDED.value:
            continue  # refunded whole: no rule gave anything in the end
        result = row.result or {}
        taken = (
            taken_back(Quote.from_stored(result), Refunded(refunds, False))
            if row.status != TransactionStatus.COMPLETED.value
            else TakenBack()
        )
        touched: set[str] = set()
        for applied in result.get("applied", []):
            if applied.get("kind") == "coupon":
                continue  # a presented coupon: counted under its rule below
            rule_id = applied["rule_id"]
            rule(rule_id).discount += int(applied["amount"]) - taken.discount.get(rule_id, 0)
            touched.add(rule_id)
        for coupon in result.get("coupons", {}).get("applied", []):
            if coupon.get("code") in issuer:
                rule_id = issuer[coupon["code"]]
                back = taken.discount.get(coupon["rule_id"], 0)
                rule(rule_id).discount += int(coupon["amount"]) - back
                touched.add(rule_id)
        for earned in result.get("points", {}).get("earned", []):
            rule_id = earned["rule_id"]
            rule(rule_id).points_issued += int(earned["points"]) - taken.points.get(rule_id, 0)
            touched.add(rule_id)
        for issue in result.get("coupons", {}).get("to_issue", []):
            touched.add(issue["rule_id"])
        for rule_id in touched:
            found = rule(rule_id)
            found.baskets += 1
            found.revenue += paid
            found.points_burned += int(row.points_burned) - taken.burn
    refunds_table = Refund.__table__  # type: ignore[attr-defined]
    withdrawn = sa.not_(  # a coupon a refund withdrew was, in the end, not issued
        sa.and_(
            coupons.c.status == CouponStatus.CANCELLED.value,
            coupons.c.issued_by_transaction_id.in_(sa.select(refunds_table.c.transaction_id)),
        )
    )
    issued = conn.execute(
        sa.select(
            coupons.c.rule_id,
            sa.func.count(),
            sa.func.count(coupons.c.redeemed_at),
        )
        .where(
            coupons.c.created_at >= since,
            coupons.c.created_at < until,
            coupons.c.rule_id.is_not(None),
            withdrawn,
        )
        .group_by(coupons.c.rule_id)
    )
    for rule_id, count, redeemed in issued:
        found = rule(rule_id)
        found.coupons_issued, found.coupons_redeemed = int(count), int(redeemed)
    ordered = sorted(by_rule.values(), key=lambda r: (-r.discount, -r.points_issued, r.rule_id))
    return ResultsReport(
        since=since,
        until=until,
        sales=sales,
        revenue=revenue,
        rules=ordered,
        refunded=refunded_money,
    )


def _with_refunds(uow: UnitOfWork, rows: Iterable[Any]) -> Iterator[tuple[Any, Mapping[int, int]]]:
    """Each sale row with what refunds took of its lines (thousandths by position), read for a
    batch of sales at a time."""
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, Mapping[int, int]]]:
        refunds = refunded_lines(
            uow=uow,
            sale_ids=[r.id for r in batch if r.status != TransactionStatus.COMPLETED.value],
        )
        for row in batch:
            yield row, refunds.get(row.id, {})
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield from flush()
    yield from flush()


def since_moment(text: str, *, now: datetime, tz: tzinfo) -> datetime:
    """`90d`, `12h` or an ISO date/moment (read in `tz`, head office's zone, if it names no
    offset) as the start of a period."""
    from datetime import timedelta

    value = text.strip()
    if len(value) > 1 and value[:-1].isdigit() and value[-1] in "dh":
        amount = int(value[:-1])
        return now - (timedelta(days=amount) if value[-1] == "d" else timedelta(hours=amount))
    try:
        return local_moment(value, tz)
    except ValueError:
        raise ValueError(f"{text!r}: expected e.g. 90d, 12h or 2026-09-01") from None
