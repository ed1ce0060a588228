"""Customer and card tables.

The phone is found by a keyed hash (`phone_hash`); the plain E.164 number is kept only when the
store's privacy settings say so, and a masked form is kept for receipts and logs. An e-mail, if
the customer gives one, is kept as given (`customers.emails`) and masked wherever it is shown.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from pos_loyalty.storage.types import UTCDateTime, utcnow


def short_name(name: str) -> str:
    """'Иван Петров' → 'Иван П.' (what a receipt, a lane display or a call list shows)."""
    parts = name.split()
    return f"{parts[0]} {parts[1][0]}." if len(parts) >= 2 else name


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    phone_hash: str = Field(max_length=64, unique=True, index=True)
    phone_e164: str | None = Field(default=None, max_length=32)
    phone_masked: str = Field(max_length=32)
    birthday: date | None = None
    # Optional, for e-mail outreach (only with the `email` consent); shown masked, never logged.
    email: str | None = Field(default=None, max_length=254)
    consents: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Lifetime paid spend (minor units) decides the tier; kept up to date by the commit.
    lifetime_spend: int = Field(default=0, sa_type=BigInteger)
    # Cached sum of the ledger; never the source of truth (`pos-loyalty ledger verify`).
    points_balance: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set when the account was erased on request or merged into another (`merged_into_id`): a
    # closed account keeps its id for the ledger and sales but is never identified again.
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    merged_into_id: str | None = Field(default=None, max_length=32)


class Card(SQLModel, table=True):
    __tablename__ = "cards"

    number: str = Field(primary_key=True, max_length=19)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
