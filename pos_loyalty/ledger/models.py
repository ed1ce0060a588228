"""Ledger entries: rows are only ever inserted; a balance is the sum of `points`.

A positive entry (earn, a returned burn, a positive adjustment) is a lot with its own
`expires_at`. A negative entry draws from lots: oldest-expiring first, unless `lot_id` pins it to
one lot (an expiry, or the reversal of one sale's earn). `expired_lot_id` is unique, so a lot can
expire only once even when two expiry tasks run at the same moment.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer
from sqlmodel import Field, SQLModel

from pos_loyalty.storage.types import UTCDateTime, utcnow

# SQLite only auto-numbers an `INTEGER PRIMARY KEY`; PostgreSQL gets a bigint identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class EntryKind(StrEnum):
    EARN = "earn"
    BURN = "burn"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVERSE = "reverse"


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    kind: str = Field(max_length=8)
    points: int = Field(sa_type=BigInteger)  # signed: credit > 0, debit < 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    lot_id: int | None = Field(default=None, sa_type=BigInteger)
    expired_lot_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    reverses_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    transaction_id: str | None = Field(default=None, max_length=32, index=True)
    refund_id: str | None = Field(default=None, max_length=32)
    rule_id: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=200)
