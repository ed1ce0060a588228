"""The purchase history and personal coupons a dry run gives each customer at each past sale,
built as the replay walks the sales in time order, so personal offers are priced as they would
have been then.

Purchases are the sales as recorded (those not refunded whole, as the till's own history query
counts them), shaped exactly as `segments.service.load_customer_history` shapes them. Coupon
holdings are per program: those the customer held at the start of the replay (from the coupons
table), then the personal coupons the replayed program itself issues; a holding ends at its
expiry or when a later sale spent a coupon of that rule. So a new personal offer is limited by
its own coupons (one active per customer, cooldown), not by the old program's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

import sqlalchemy as sa

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.inputs import CustomerHistory
from pos_loyalty.rules.quote import Quote
from pos_loyalty.segments.service import history_window_days, item_histories
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import table_of

# (sku, category, name, store-local day, paid): one sale line as the history aggregates it
HistoryLine = tuple[str, str, str, date, int]


@dataclass(frozen=True, slots=True)
class _Visit:
    at: datetime
    paid: int
    lines: tuple[HistoryLine, ...]


@dataclass(slots=True)
class _Purchases:
    last_at: datetime | None = None
    visits: deque[_Visit] = field(default_factory=deque)


class PurchaseHistories:
    """Each customer's sales so far in the walk, kept for `window_days` (the longest look-back
    of the programs replayed)."""

    def __init__(self, *, window_days: int, tz: tzinfo) -> None:
        self.window_days = window_days
        self.tz = tz
        self._by_customer: dict[str, _Purchases] = {}

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def add(
        self, customer_id: str, at: datetime, paid: int, lines: tuple[HistoryLine, ...]
    ) -> None:
        """A sale the customer made (not refunded whole), in time order."""
        found = self._by_customer.setdefault(customer_id, _Purchases())
        found.last_at = at
        found.visits.append(_Visit(at, paid, lines))

    def history(
        self, customer_id: str, now: datetime, window_days: int, holdings: CouponHoldings
    ) -> CustomerHistory:
        """The history `load_customer_history` would have read at `now` for this window."""
        since_day = now.astimezone(self.tz).date() - timedelta(days=window_days)
        since = datetime.combine(since_day, datetime.min.time(), tzinfo=self.tz)
        found = self._by_customer.get(customer_id)
        held = holdings.at(customer_id, now)
        if found is None:
            return CustomerHistory(since=since_day, active_coupons=held[0], last_issued=held[1])
        keep_from = now - timedelta(days=self.window_days + 2)
        while found.visits and found.visits[0].at < keep_from:
            found.visits.popleft()  # older than any program's window will ask for again
        visits = spend = 0
        rows: list[HistoryLine] = []
        for visit in found.visits:
            if visit.at >= since:
                visits += 1
                spend += visit.paid
                rows.extend(visit.lines)
        skus, categories = item_histories(rows)
        return CustomerHistory(
            since=since_day,
            last_purchase_at=found.last_at,
            visits=visits,
            spend=spend,
            skus=skus,
            categories=categories,
            active_coupons=held[0],
            last_issued=held[1],
        )


@dataclass(slots=True)
class _Holding:
    last_issued: datetime
    active_until: datetime  # expiry, or the moment a sale spent it


class CouponHoldings:
    """One program's personal coupons by customer and rule, as the replay goes."""

    def __init__(self, rules: CompiledRules) -> None:
        self.rule_ids = frozenset(r.id for r in rules.personal_rules)
        self.window_days = history_window_days(rules)
        self._held: dict[str, dict[str, _Holding]] = {}

    def seed(self, uow: UnitOfWork, before: datetime) -> None:
        """The personal coupons of these rules customers had been issued before `before`."""
        if not self.rule_ids:
            return
        co = table_of(Coupon)
        rows = uow.session.connection().execute(
            sa.select(
                co.c.owner_customer_id,
                co.c.rule_id,
                co.c.created_at,
                co.c.expires_at,
                co.c.redeemed_at,
                co.c.cancelled_at,
            )
            .where(
                co.c.rule_id.in_(sorted(self.rule_ids)),
                co.c.owner_customer_id.is_not(None),
                co.c.created_at < before,
            )
            .order_by(co.c.created_at)
        )
        for owner, rule_id, created, expires, redeemed, cancelled in rows:
            until = expires
            if cancelled is not None:
                until = min(until, cancelled)
            if redeemed is not None and redeemed < before:  # spent later: the walk ends it
                until = min(until, redeemed)
            self._held.setdefault(owner, {})[rule_id] = _Holding(created, until)

    def at(self, customer_id: str, now: datetime) -> tuple[frozenset[str], Mapping[str, datetime]]:
        """(rules with a coupon still usable at `now`, rule → when its latest was issued)."""
        held = self._held.get(customer_id)
        if not held:
            return frozenset(), {}
        active = frozenset(rule for rule, h in held.items() if h.active_until > now)
        return active, {rule: h.last_issued for rule, h in held.items()}

    def issued(self, customer_id: str, quote: Quote) -> None:
        """The personal coupons a replayed sale issues to the customer."""
        for coupon in quote.coupons.to_issue:
            if coupon.rule_id in self.rule_ids:
                self._held.setdefault(customer_id, {})[coupon.rule_id] = _Holding(
                    quote.evaluated_at, coupon.expires_at
                )

    def spent(self, customer_id: str, rule_ids: Iterable[str], at: datetime) -> None:
        """A sale spent coupons of these rules: the customer no longer holds one."""
        held = self._held.get(customer_id)
        if not held:
            return
        for rule_id in rule_ids:
            found = held.get(rule_id)
            if found is not None and found.active_until > at:
                found.active_until = at
