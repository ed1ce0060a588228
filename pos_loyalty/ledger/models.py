"""Ledger entries: rows are only ever inserted; a balance is the sum of `points`.

A positive entry (earn, a returned burn, a positive adjustment) is a lot with its own
`expires_at`. A negative entry draws from lots: oldest-expiring first, unless `lot_id` pins it to
one lot (an expiry, or the reversal of one sale's earn). `expired_lot_id` is unique, so a lot can
expire only once even when two expiry tasks run at the same moment.

`lot_checkpoints` is derived, never the truth: how far a customer's lots are known to be used up,
so the receipt's "Сгорят" line reads the lots after it and not the customer's whole history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, text
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
    __table_args__ = (
        Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
        # a customer's lots in lot order, from a checkpoint on (ledger/expiring.py): credits
        # only, or the debits (never-expiring) would fill the never-expiring end
        Index(
            "ix_ledger_entries_lots",
            "customer_id",
            "expires_at",
            "id",
            sqlite_where=text("points > 0"),
            postgresql_where=text("points > 0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    kind: str = Field(max_length=8)
    points: int = Field(sa_type=BigInteger)  # signed: credit > 0, debit < 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    lot_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    expired_lot_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    reverses_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    transaction_id: str | None = Field(default=None, max_length=32, index=True)
    refund_id: str | None = Field(default=None, max_length=32)
    rule_id: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=200)


class LotCheckpoint(SQLModel, table=True):
    """Every credit at or before (`settled_expires_at`, `settled_entry_id`) in lot order (soonest
    expiry first, never-expiring last, then by id) with an id up to `seen_entry_id` had nothing
    left when this was written, and stays so: debits only ever take more. A credit that lands
    later with an earlier expiry (an id above `seen_entry_id`) makes readers start again from the
    whole ledger (`ledger/expiring.py`)."""

    __tablename__ = "lot_checkpoints"

    customer_id: str = Field(primary_key=True, foreign_key="customers.id", max_length=32)
    settled_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_entry_id: int = Field(sa_type=BigInteger)
    seen_entry_id: int = Field(sa_type=BigInteger)
