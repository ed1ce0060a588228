"""Tables of head office (published bundles, the store registry) and of a store (the bundles it
accepted, and how its last sync went). Both live in every database: it is one program."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from pos_loyalty.storage.types import UTCDateTime, utcnow


class PublishedBundle(SQLModel, table=True):
    """A bundle head office signed; `envelope` is the exact signed text stores download."""

    __tablename__ = "hq_bundles"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    published_at: datetime = Field(sa_type=UTCDateTime)
    effective_from: datetime = Field(sa_type=UTCDateTime)
    targets: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=1000)
    rollback_of: int | None = None  # republished from this version by `hq rollback`
    published_by: str = Field(default="", max_length=200)  # the key's label, or the CLI's user
    envelope: str = Field(sa_column=Column(Text, nullable=False))


class RegisteredStore(SQLModel, table=True):
    """A store head office knows, with what it reported at its last pull."""

    __tablename__ = "hq_stores"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    region: str = Field(default="", max_length=64, index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_keys.id", index=True)
    registered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    active_version: int | None = None
    pending_version: int | None = None
    last_error: str = Field(default="", max_length=500)
    software_version: str = Field(default="", max_length=64)


class StoreFiguresReport(SQLModel, table=True):
    """What a store reported of its own books on one day (its last pull that day): the points it
    owes, its coupons, its RFM segments. Head office sums the stores' latest for the console."""

    __tablename__ = "hq_store_figures"

    store_id: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)  # head office's calendar day of the report
    reported_at: datetime = Field(sa_type=UTCDateTime)
    database: str = Field(default="", max_length=200)  # stores on one database report it once
    liability_points: int = Field(default=0, sa_type=BigInteger)
    liability: int = Field(default=0, sa_type=BigInteger)  # minor units at the point value
    coupons_issued: int = 0
    coupons_redeemed: int = 0
    coupons_expired: int = 0
    customers: int = 0
    segments: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    segments_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BundleStatus(StrEnum):
    PENDING = "pending"  # accepted, waiting for its effective_from
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # was active, a newer one took over


class AcceptedBundle(SQLModel, table=True):
    """A bundle this store verified and kept: the history survives restarts and outages."""

    __tablename__ = "store_bundles"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    effective_from: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(max_length=16)
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    envelope: str = Field(sa_column=Column(Text, nullable=False))


class SyncState(SQLModel, table=True):
    """One row: how this store's last pull from head office went."""

    __tablename__ = "store_sync_state"

    id: int = Field(default=1, primary_key=True)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=500)
    last_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    refusals: int = 0
    failures: int = 0  # pulls that failed or were refused (refusals are a part of them)
