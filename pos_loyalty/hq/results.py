"""Results: what each rule actually did over a period, from the sales as they were committed
(each sale keeps what its quote applied): baskets, discount, points issued and burned, coupons
issued and redeemed, and the revenue of the baskets it touched. "What did the promotion cost,
and what did it bring." Refunds are not netted out."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.sales.models import SaleTransaction
from pos_loyalty.storage import UnitOfWork


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
    revenue: int
    rules: list[RuleResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "sales": self.sales,
            "revenue": self.revenue,
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
    sales = revenue = 0
    query = sa.select(tx.c.total, tx.c.points_burned, tx.c.result).where(
        tx.c.created_at >= since, tx.c.created_at < until
    )
    for row in conn.execution_options(yield_per=2000).execute(query):
        sales += 1
        revenue += int(row.total)
        result = row.result or {}
        touched: set[str] = set()
        for applied in result.get("applied", []):
            if applied.get("kind") == "coupon":
                continue  # a presented coupon: counted under its rule below
            rule(applied["rule_id"]).discount += int(applied["amount"])
            touched.add(applied["rule_id"])
        for coupon in result.get("coupons", {}).get("applied", []):
            if coupon.get("code") in issuer:
                rule_id = issuer[coupon["code"]]
                rule(rule_id).discount += int(coupon["amount"])
                touched.add(rule_id)
        for earned in result.get("points", {}).get("earned", []):
            rule(earned["rule_id"]).points_issued += int(earned["points"])
            touched.add(earned["rule_id"])
        for issue in result.get("coupons", {}).get("to_issue", []):
            touched.add(issue["rule_id"])
        for rule_id in touched:
            found = rule(rule_id)
            found.baskets += 1
            found.revenue += int(row.total)
            found.points_burned += int(row.points_burned)
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
        )
        .group_by(coupons.c.rule_id)
    )
    for rule_id, count, redeemed in issued:
        found = rule(rule_id)
        found.coupons_issued, found.coupons_redeemed = int(count), int(redeemed)
    ordered = sorted(by_rule.values(), key=lambda r: (-r.discount, -r.points_issued, r.rule_id))
    return ResultsReport(since=since, until=until, sales=sales, revenue=revenue, rules=ordered)


def since_moment(text: str, *, now: datetime) -> datetime:
    """`90d`, `12h` or an ISO date/moment (UTC if no offset) as the start of a period."""
    from datetime import UTC, timedelta

    value = text.strip()
    if len(value) > 1 and value[:-1].isdigit() and value[-1] in "dh":
        amount = int(value[:-1])
        return now - (timedelta(days=amount) if value[-1] == "d" else timedelta(hours=amount))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r}: expected e.g. 90d, 12h or 2026-09-01") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
