"""The figures a store reports to head office with each pull, and head office's chain-wide sums.

Head office holds no store's ledger (unless the chain shares one PostgreSQL), so the points a
store owes, its coupons by outcome and its RFM segment sizes travel with the pull's report (a few
query parameters beside `active` and `pending`). Head office keeps one row per store and day (the
day's last report) and sums each store's latest; stores that share one database report the same
books, so they are counted once (by `database`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlmodel import col, select

from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.customers.models import Customer
from pos_loyalty.hq.models import StoreFiguresReport
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.segments.service import segment_summary
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MAX_COUNT = 10**15
_MAX_SEGMENTS = 30
INT_FIELDS = (
    "liability_points",
    "liability",
    "coupons_issued",
    "coupons_redeemed",
    "coupons_expired",
    "customers",
)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """One store's books as of its report: integers, money in minor units."""

    liability_points: int  # points customers hold (the ledger's sum)
    liability: int  # those points at the running program's point value
    coupons_issued: int  # ever
    coupons_redeemed: int
    coupons_expired: int  # past their time unused (marked or not yet)
    customers: int
    segments: dict[str, int] = field(default_factory=dict)  # RFM, as of `segments_at`
    segments_at: datetime | None = None
    database: str = ""

    def to_query(self) -> dict[str, str]:
        query = {name: str(getattr(self, name)) for name in INT_FIELDS}
        query["segments"] = ",".join(f"{k}:{v}" for k, v in self.segments.items())
        query["segments_at"] = self.segments_at.isoformat() if self.segments_at else ""
        query["database"] = self.database
        return query


def _database_key(store: Store) -> str:
    """Which books these are: a SQLite file is the store's own; a server database is named by
    host, port and name (never the credentials)."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        return f"sqlite:{store.settings.store.id}"
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def measure_store(*, store: Store, now: datetime) -> StoreFigures:
    """Read the store's books: a few aggregate queries, cheap enough for every pull."""
    with store.uow() as uow:
        session = uow.session
        points = session.execute(
            select(sa.func.coalesce(sa.func.sum(LedgerEntry.points), 0))
        ).scalar_one()
        issued, redeemed, expired = session.execute(
            select(
                sa.func.count(),
                sa.func.count(col(Coupon.redeemed_at)),
                sa.func.count().filter(
                    sa.or_(
                        col(Coupon.status) == CouponStatus.EXPIRED.value,
                        sa.and_(
                            col(Coupon.status) == CouponStatus.ISSUED.value,
                            col(Coupon.expires_at) <= now,
                        ),
                    )
                ),
            )
        ).one()
        customers = session.execute(select(sa.func.count()).select_from(Customer)).scalar_one()
        summary = segment_summary(session=session, config=store.settings.segments)
    points = max(int(points), 0)
    return StoreFigures(
        liability_points=points,
        liability=points * store.rules.points.point_value_minor,
        coupons_issued=int(issued),
        coupons_redeemed=int(redeemed),
        coupons_expired=int(expired),
        customers=int(customers),
        segments={s.name: s.customers for s in summary.segments if s.customers},
        segments_at=summary.computed_at,
        database=_database_key(store),
    )


def figures_from_query(query: Mapping[str, str]) -> StoreFigures | None:
    """The figures in a pull's query, or None (an older store, or a malformed report: the pull
    itself still counts)."""
    values: dict[str, int] = {}
    for name in INT_FIELDS:
        text = query.get(name, "")
        if not text.isdigit() or len(text) > 16 or int(text) > _MAX_COUNT:
            return None
        values[name] = int(text)
    segments: dict[str, int] = {}
    for part in filter(None, query.get("segments", "").split(",")[:_MAX_SEGMENTS]):
        name, _, count = part.partition(":")
        if not _SEGMENT.match(name) or not count.isdigit() or len(count) > 12:
            return None
        segments[name] = int(count)
    moment = None
    if at := query.get("segments_at", ""):
        try:
            moment = datetime.fromisoformat(at[:40])
        except ValueError:
            return None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return StoreFigures(
        **values, segments=segments, segments_at=moment, database=query.get("database", "")[:200]
    )


def record_figures(
    *, uow: UnitOfWork, store_id: str, figures: StoreFigures, now: datetime, tz: tzinfo
) -> None:
    """Keep the day's last report of a store (the caller commits, with the pull's record)."""
    day = now.astimezone(tz).date()
    row = uow.session.get(StoreFiguresReport, (store_id, day)) or StoreFiguresReport(
        store_id=store_id, day=day, reported_at=now
    )
    row.reported_at = now
    row.database = figures.database or f"store:{store_id}"
    for name in INT_FIELDS:
        setattr(row, name, getattr(figures, name))
    row.segments = dict(figures.segments)
    row.segments_at = figures.segments_at
    uow.session.add(row)


@dataclass(frozen=True, slots=True)
class ChainFigures:
    """The chain's books as the stores last reported them, and the liability day by day."""

    stores: list[tuple[str, datetime]]  # which stores' reports are counted, and when sent
    liability_points: int
    liability: int
    coupons_issued: int
    coupons_redeemed: int
    coupons_expired: int
    customers: int
    segments: list[tuple[str, int]]
    segments_at: datetime | None
    liability_by_day: list[tuple[date, int]]  # minor units, each day's latest per database


def _counted(latest: dict[str, StoreFiguresReport]) -> list[StoreFiguresReport]:
    """Each database once: the latest report among the stores on it."""
    by_database: dict[str, StoreFiguresReport] = {}
    for row in latest.values():
        seen = by_database.get(row.database)
        if seen is None or row.reported_at > seen.reported_at:
            by_database[row.database] = row
    return sorted(by_database.values(), key=lambda r: r.store_id)


def chain_figures(
    *, uow: UnitOfWork, today: date, days: int = 30, order: list[str] | None = None
) -> ChainFigures:
    """Sum the stores' latest reports; a day without a store's report carries its last one."""
    start = today - timedelta(days=days - 1)
    rows = list(
        uow.session.exec(
            select(StoreFiguresReport)
            .where(col(StoreFiguresReport.day) <= today)
            .order_by(col(StoreFiguresReport.day), col(StoreFiguresReport.reported_at))
        )
    )
    latest: dict[str, StoreFiguresReport] = {}
    series: list[tuple[date, int]] = []
    index = 0
    for offset in range(days):
        day = start + timedelta(days=offset)
        while index < len(rows) and rows[index].day <= day:
            latest[rows[index].store_id] = rows[index]
            index += 1
        if latest:
            series.append((day, sum(r.liability for r in _counted(latest))))
    counted = _counted(latest)
    segments: dict[str, int] = {}
    for row in counted:
        for name, count in row.segments.items():
            segments[name] = segments.get(name, 0) + int(count)
    ranked = (order or []) + sorted(set(segments) - set(order or []))
    moments = [r.segments_at for r in counted if r.segments_at is not None]
    return ChainFigures(
        stores=[(r.store_id, r.reported_at) for r in counted],
        liability_points=sum(r.liability_points for r in counted),
        liability=sum(r.liability for r in counted),
        coupons_issued=sum(r.coupons_issued for r in counted),
        coupons_redeemed=sum(r.coupons_redeemed for r in counted),
        coupons_expired=sum(r.coupons_expired for r in counted),
        customers=sum(r.customers for r in counted),
        segments=[(name, segments[name]) for name in ranked if name in segments],
        segments_at=min(moments) if moments else None,
        liability_by_day=series,
    )
