"""Segments as use cases: RFM scoring in SQL, the summary, who to contact, and the purchase
history the personal offers are chosen from.

RFM is one `INSERT … SELECT` with `ntile(5)` window functions, so the database does the work on
SQLite (≥ 3.25) and PostgreSQL alike; Python never loops over transactions.
"""

from __future__ import annotations

import csv
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.models import Customer, short_name
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.config import PersonalRule
from pos_loyalty.rules.inputs import CustomerHistory, ItemHistory
from pos_loyalty.segments.models import CustomerSegment, SegmentsConfig
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.types import UTCDateTime

# -- purchase history for personal offers -------------------------------------------------------

_HISTORY_FLOOR_DAYS = 1  # at least today's window, so winback and birthday still get a history


def history_window_days(rules: CompiledRules) -> int:
    """Days of history the active personal rules look at (0 when there are none)."""
    days = 0
    for compiled in rules.personal_rules:
        spec = compiled.rule
        assert isinstance(spec, PersonalRule)
        days = max(days, spec.lookback, _HISTORY_FLOOR_DAYS)
    return days


def _local_day_sql(dialect: str, offset_minutes: int) -> str:
    """`transactions.created_at` as the store-local calendar day (a fixed UTC offset)."""
    if dialect == "sqlite":
        return f"date(t.created_at, '{offset_minutes:+d} minutes')"
    return f"CAST((t.created_at AT TIME ZONE 'UTC') + INTERVAL '{offset_minutes} minutes' AS DATE)"


class HistoryCache:
    """Purchase histories by customer, reused while the customer's sales are unchanged.

    A till re-evaluates the basket at every scanned line and the sale is priced again at commit;
    only the first evaluate reads the lines. Each entry is keyed by the database, the window and
    the customer's sales summary (last sale, count, spend), which a cheap query reads every time,
    so a new sale or a refund is seen at once, in any process.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], _Items] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> _Items | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], items: _Items) -> None:
        with self._lock:
            self._entries[key] = items
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_Items = tuple[dict[str, ItemHistory], dict[str, ItemHistory]]
SHARED_HISTORY_CACHE = HistoryCache()


def load_customer_history(
    *,
    session: Session,
    customer_id: str,
    rules: CompiledRules,
    now: datetime,
    tz: tzinfo,
    cache: HistoryCache | None = SHARED_HISTORY_CACHE,
) -> CustomerHistory | None:
    """What the personal rules need to know about a customer: the sales summary, lines by sku
    and day (aggregated by the database; reused from `cache` while the summary is unchanged)
    and personal coupons by rule. None when the rules have no personal rule."""
    window = history_window_days(rules)
    if window == 0:
        return None
    local_now = now.astimezone(tz)
    offset = local_now.utcoffset() or timedelta(0)
    offset_minutes = int(offset.total_seconds() // 60)
    since_day = local_now.date() - timedelta(days=window)
    since = datetime.combine(since_day, datetime.min.time(), tzinfo=tz)
    bind = session.get_bind()
    params = {"cid": customer_id, "since": since, "now": now}
    sales = session.execute(_SALES_SQL, params).one()
    key = (
        str(bind.engine.url),
        customer_id,
        since_day,
        offset_minutes,
        sales.last_at,
        sales.sales,
        sales.visits,
        sales.spend,
    )
    items = cache.get(key) if cache is not None else None
    if items is None:
        lines = session.execute(_lines_sql(bind.dialect.name, offset_minutes), params).all()
        items = item_histories(lines)
        if cache is not None:
            cache.put(key, items)
    coupons = session.execute(_coupons_query(customer_id, rules), {"now_c": now}).all()
    last_issued: dict[str, datetime] = {}
    for rule_id, issued_at, _active in coupons:
        if issued_at is not None:
            last_issued[rule_id] = _aware(issued_at)
    return CustomerHistory(
        since=since_day,
        last_purchase_at=sales.last_at,
        visits=int(sales.visits or 0),
        spend=int(sales.spend or 0),
        skus=items[0],
        categories=items[1],
        active_coupons=frozenset(rule_id for rule_id, _, active in coupons if active),
        last_issued=last_issued,
    )


_SALES_SQL = (
    sa.text(
        "SELECT max(created_at) AS last_at, count(*) AS sales,"
        " sum(CASE WHEN created_at >= :since THEN 1 ELSE 0 END) AS visits,"
        " sum(CASE WHEN created_at >= :since THEN total - refunded_amount ELSE 0 END) AS spend"
        " FROM transactions WHERE customer_id = :cid AND created_at < :now"
        " AND status <> 'refunded'"
    )
    .bindparams(
        sa.bindparam("since", type_=UTCDateTime()), sa.bindparam("now", type_=UTCDateTime())
    )
    .columns(
        sa.column("last_at", UTCDateTime()),
        sa.column("sales", sa.Integer()),
        sa.column("visits", sa.Integer()),
        sa.column("spend", sa.BigInteger()),
    )
)


@lru_cache(maxsize=64)
def _lines_sql(dialect: str, offset_minutes: int) -> sa.TextClause:
    day_sql = _local_day_sql(dialect, offset_minutes)
    return sa.text(
        "SELECT l.sku, l.category, max(l.name), " + day_sql + ", sum(l.total)"
        " FROM transactions t JOIN transaction_lines l ON l.transaction_id = t.id"
        " WHERE t.customer_id = :cid AND t.created_at >= :since AND t.created_at < :now"
        " AND t.status <> 'refunded' GROUP BY l.sku, l.category, " + day_sql
    ).bindparams(
        sa.bindparam("since", type_=UTCDateTime()), sa.bindparam("now", type_=UTCDateTime())
    )


def _coupons_query(customer_id: str, rules: CompiledRules) -> sa.Select[str | None, datetime, Any]:
    active = sa.case(
        (
            sa.and_(
                col(Coupon.status) == "issued",
                col(Coupon.expires_at) > sa.bindparam("now_c", type_=UTCDateTime()),
            ),
            1,
        ),
        else_=0,
    )
    return (
        sa.select(
            col(Coupon.rule_id),
            sa.func.max(col(Coupon.created_at)).label("last_issued"),
            sa.func.max(active).label("active"),
        )
        .where(
            col(Coupon.owner_customer_id) == customer_id,
            col(Coupon.rule_id).in_([r.id for r in rules.personal_rules]),
        )
        .group_by(col(Coupon.rule_id))
    )


def item_histories(rows: Sequence[Any]) -> _Items:
    """Rows of (sku, category, name, day, amount) → per-sku and per-category days."""
    by_sku: dict[str, dict[date, int]] = {}
    by_category: dict[str, dict[date, int]] = {}
    sku_info: dict[str, tuple[date, str, str]] = {}  # latest (day, name, category) per sku
    parsed: dict[Any, date] = {}
    for sku, category, name, day_value, amount in rows:
        day = parsed.get(day_value)
        if day is None:
            day = day_value if isinstance(day_value, date) else date.fromisoformat(day_value)
            parsed[day_value] = day
        paid = int(amount or 0)
        days = by_sku.setdefault(sku, {})
        days[day] = days.get(day, 0) + paid
        days = by_category.setdefault(category, {})
        days[day] = days.get(day, 0) + paid
        seen = sku_info.get(sku)
        if seen is None or day >= seen[0]:
            sku_info[sku] = (day, name, category)
    skus = {}
    for sku, table in by_sku.items():
        ordered = sorted(table)
        _, name, category = sku_info[sku]
        skus[sku] = ItemHistory(
            sku, name, category, tuple(ordered), tuple([table[d] for d in ordered])
        )
    categories = {}
    for category, table in by_category.items():
        ordered = sorted(table)
        categories[category] = ItemHistory(
            category, category, category, tuple(ordered), tuple([table[d] for d in ordered])
        )
    return skus, categories


def customer_segment_names(*, session: Session, customer_id: str) -> frozenset[str]:
    """The customer's segment from the last RFM run, for `when.segments` (empty if none)."""
    segment = session.execute(
        sa.select(col(CustomerSegment.segment)).where(
            col(CustomerSegment.customer_id) == customer_id
        )
    ).scalar_one_or_none()
    return frozenset((segment,)) if segment else frozenset()


def personal_rules_with_active_coupon(
    *, session: Session, customer_id: str, rule_ids: Sequence[str], now: datetime
) -> frozenset[str]:
    """Those of `rule_ids` whose coupon the customer still holds, usable at `now`. The commit asks
    again after locking the customer's row, so two quotes priced side by side cannot both issue
    one: one active coupon per rule per customer."""
    if not rule_ids:
        return frozenset()
    rows = session.execute(
        sa.select(col(Coupon.rule_id))
        .where(
            col(Coupon.owner_customer_id) == customer_id,
            col(Coupon.rule_id).in_(list(rule_ids)),
            col(Coupon.status) == "issued",
            col(Coupon.expires_at) > now,
        )
        .distinct()
    ).scalars()
    return frozenset(rule_id for rule_id in rows if rule_id is not None)


def scope_issued_coupon(
    *, session: Session, code: str, skus: Sequence[str], categories: Sequence[str]
) -> None:
    """Narrow a just-issued coupon to the goods a personal offer chose (the quote's `skus` /
    `categories` of a `to_issue` entry); `issue_coupon` has no such arguments yet."""
    if not skus and not categories:
        return
    session.flush()
    session.execute(
        sa.update(Coupon)
        .where(col(Coupon.code) == code)
        .values(skus=list(skus), categories=list(categories))
    )


# -- RFM ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentCount:
    name: str
    customers: int
    avg_frequency: float
    avg_monetary: int  # minor units

    def share(self, total: int) -> float:
        return self.customers / total if total else 0.0


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """Customers per segment as of the last run (`computed_at` None: never computed)."""

    computed_at: datetime | None
    scored: int  # customers with at least one purchase
    customers: int  # all enrolled customers
    segments: tuple[SegmentCount, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "customers": self.customers,
            "scored": self.scored,
            "segments": [
                {
                    "name": s.name,
                    "customers": s.customers,
                    "share": round(s.share(self.scored), 4),
                    "avg_frequency": round(s.avg_frequency, 2),
                    "avg_monetary": s.avg_monetary,
                }
                for s in self.segments
            ],
        }


RFM_STAGES = ("clearing the previous run", "scoring customers in SQL", "summarising")


def _segment_case(config: SegmentsConfig, now: datetime) -> tuple[str, list[sa.BindParameter[Any]]]:
    """The CASE expression naming each scored row; thresholds are bound, scores are ints."""
    whens: list[str] = []
    binds: list[sa.BindParameter[Any]] = []
    for index, definition in enumerate(config.definitions[:-1]):
        conditions: list[str] = []
        for column, bounds in (("r", definition.r), ("f", definition.f), ("m", definition.m)):
            if bounds is not None:
                conditions.append(f"{column} BETWEEN {int(bounds[0])} AND {int(bounds[1])}")
        if definition.min_days_since_last is not None:
            name = f"last_cut_{index}"
            cut = now - timedelta(days=definition.min_days_since_last)
            binds.append(sa.bindparam(name, cut, type_=UTCDateTime()))
            conditions.append(f"last_at <= :{name}")
        if definition.max_days_since_first is not None:
            name = f"first_cut_{index}"
            cut = now - timedelta(days=definition.max_days_since_first)
            binds.append(sa.bindparam(name, cut, type_=UTCDateTime()))
            conditions.append(f"first_at >= :{name}")
        binds.append(sa.bindparam(f"segment_{index}", definition.name, type_=sa.String()))
        whens.append(f"WHEN {' AND '.join(conditions)} THEN :segment_{index}")
    last = len(config.definitions) - 1
    binds.append(sa.bindparam(f"segment_{last}", config.definitions[-1].name, type_=sa.String()))
    return f"CASE {' '.join(whens)} ELSE :segment_{last} END", binds


def compute_rfm(
    *,
    uow: UnitOfWork,
    config: SegmentsConfig,
    now: datetime,
    progress: Callable[[str], None] | None = None,
) -> SegmentSummary:
    """Score every customer with a purchase (R, F, M quintiles), name their segment and store
    it in `customer_segments`, replacing the previous run, in one database transaction."""
    session = uow.session
    report = progress or (lambda _stage: None)
    report(RFM_STAGES[0])
    session.execute(sa.delete(CustomerSegment))
    report(RFM_STAGES[1])
    case_sql, binds = _segment_case(config, now)
    statement = sa.text(
        "WITH agg AS ("
        " SELECT customer_id, min(created_at) AS first_at, max(created_at) AS last_at,"
        " sum(CASE WHEN created_at >= :window_start THEN 1 ELSE 0 END) AS frequency,"
        " sum(CASE WHEN created_at >= :window_start THEN total - refunded_amount ELSE 0 END)"
        " AS monetary"
        " FROM transactions"
        " WHERE customer_id IS NOT NULL AND status <> 'refunded' AND created_at <= :now"
        " GROUP BY customer_id"
        "), scored AS ("
        " SELECT customer_id, first_at, last_at, frequency, monetary,"
        " ntile(5) OVER (ORDER BY last_at, customer_id) AS r,"
        " ntile(5) OVER (ORDER BY frequency, monetary, customer_id) AS f,"
        " ntile(5) OVER (ORDER BY monetary, frequency, customer_id) AS m"
        " FROM agg"
        ") "
        "INSERT INTO customer_segments (customer_id, segment, r_score, f_score, m_score,"
        " frequency, monetary, first_purchase_at, last_purchase_at, computed_at) "
        f"SELECT customer_id, {case_sql}, r, f, m, frequency, monetary, first_at, last_at,"
        " :computed_at FROM scored"
    ).bindparams(
        sa.bindparam("window_start", now - timedelta(days=config.window_days), UTCDateTime()),
        sa.bindparam("now", now, UTCDateTime()),
        sa.bindparam("computed_at", now, UTCDateTime()),
        *binds,
    )
    session.execute(statement)
    report(RFM_STAGES[2])
    summary = segment_summary(session=session, config=config)
    uow.commit()
    return summary


def segment_summary(*, session: Session, config: SegmentsConfig) -> SegmentSummary:
    """Counts per segment (in the config's order, zeros included) from the last run."""
    rows = session.execute(
        sa.text(
            "SELECT segment, count(*) AS customers, avg(frequency) AS avg_frequency,"
            " avg(monetary) AS avg_monetary, max(computed_at) AS computed_at"
            " FROM customer_segments GROUP BY segment"
        ).columns(
            sa.column("segment", sa.String()),
            sa.column("customers", sa.Integer()),
            sa.column("avg_frequency", sa.Float()),
            sa.column("avg_monetary", sa.Float()),
            sa.column("computed_at", UTCDateTime()),
        )
    ).all()
    customers = session.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one()
    found = {row.segment: row for row in rows}
    names = config.names + sorted(set(found) - set(config.names))  # older runs' names last
    counts = []
    for name in names:
        row = found.get(name)
        counts.append(
            SegmentCount(
                name=name,
                customers=int(row.customers) if row else 0,
                avg_frequency=float(row.avg_frequency or 0) if row else 0.0,
                avg_monetary=round(float(row.avg_monetary or 0)) if row else 0,
            )
        )
    computed = [row.computed_at for row in rows if row.computed_at is not None]
    return SegmentSummary(
        computed_at=max(computed) if computed else None,
        scored=sum(c.customers for c in counts),
        customers=int(customers),
        segments=tuple(counts),
    )


# -- exports ---------------------------------------------------------------------------------------

SCORE_COLUMNS = (
    "customer_id",
    "segment",
    "r",
    "f",
    "m",
    "frequency",
    "monetary",
    "first_purchase_at",
    "last_purchase_at",
)


def write_scores_csv(*, session: Session, path: Path) -> int:
    """Every scored customer with R, F, M and segment; returns the number of rows written."""
    query = sa.select(
        col(CustomerSegment.customer_id),
        col(CustomerSegment.segment),
        col(CustomerSegment.r_score),
        col(CustomerSegment.f_score),
        col(CustomerSegment.m_score),
        col(CustomerSegment.frequency),
        col(CustomerSegment.monetary),
        col(CustomerSegment.first_purchase_at),
        col(CustomerSegment.last_purchase_at),
    ).order_by(col(CustomerSegment.customer_id))
    count = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(SCORE_COLUMNS)
        for row in session.execute(query.execution_options(yield_per=5000)):
            writer.writerow([*row[:7], row[7].isoformat(), row[8].isoformat()])
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer to reach with an offer: masked, as a call-centre script would show them."""

    customer_id: str
    name: str  # "Иван П."
    phone: str  # "+7 *** ***-45-67"
    segment: str
    last_purchase: date  # store-local
    days_since_last: int
    frequency: int
    monetary: int
    channels: tuple[str, ...]  # consents given among `contact_consents`

    def row(self) -> list[str | int]:
        return [
            self.customer_id,
            self.name,
            self.phone,
            self.segment,
            self.last_purchase.isoformat(),
            self.days_since_last,
            self.frequency,
            self.monetary,
            " ".join(self.channels),
        ]


CONTACT_COLUMNS = (
    "customer_id",
    "name",
    "phone",
    "segment",
    "last_purchase",
    "days_since_last",
    "frequency",
    "monetary",
    "channels",
)


@dataclass(frozen=True, slots=True)
class ContactList:
    contacts: tuple[Contact, ...]
    without_consent: int  # in the segment, but gave none of the contact consents


def contact_list(
    *, session: Session, config: SegmentsConfig, segment: str, now: datetime, tz: tzinfo
) -> ContactList:
    """Customers of `segment` who consented to be contacted (any of `contact_consents`),
    most valuable first; only masked phones leave the store."""
    rows = session.execute(
        sa.select(
            col(Customer.id),
            col(Customer.name),
            col(Customer.phone_masked),
            col(Customer.consents),
            col(CustomerSegment.last_purchase_at),
            col(CustomerSegment.frequency),
            col(CustomerSegment.monetary),
        )
        .join(CustomerSegment, col(CustomerSegment.customer_id) == col(Customer.id))
        .where(col(CustomerSegment.segment) == segment)
        .order_by(
            col(CustomerSegment.monetary).desc(),
            col(Customer.id),
        )
    ).all()
    today = now.astimezone(tz).date()
    contacts: list[Contact] = []
    refused = 0
    for customer_id, name, phone, consents, last_at, frequency, monetary in rows:
        channels = tuple(c for c in config.contact_consents if (consents or {}).get(c) is True)
        if not channels:
            refused += 1
            continue
        last_day = last_at.astimezone(tz).date()
        contacts.append(
            Contact(
                customer_id=customer_id,
                name=short_name(name),
                phone=phone,
                segment=segment,
                last_purchase=last_day,
                days_since_last=(today - last_day).days,
                frequency=int(frequency),
                monetary=int(monetary),
                channels=channels,
            )
        )
    return ContactList(tuple(contacts), refused)


def write_contacts_csv(contacts: ContactList, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CONTACT_COLUMNS)
        writer.writerows(contact.row() for contact in contacts.contacts)


def iter_segment_titles(names: Sequence[str], locale: str) -> Iterator[tuple[str, str]]:
    """(name, title) pairs: Russian titles for the standard names in a Russian store."""
    from pos_loyalty.rules.messages import is_russian
    from pos_loyalty.segments.models import SEGMENT_TITLES_RU

    for name in names:
        yield name, SEGMENT_TITLES_RU.get(name, name) if is_russian(locale) else name


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
