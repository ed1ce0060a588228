"""Tables of the sale path: quotes, transactions and their lines, refunds, idempotency records,
stamp counters and the receipt outbox.

Quantities are stored as integer thousandths (`qty_milli`), money as integer minor units.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from pos_loyalty.ledger.models import BigId
from pos_loyalty.storage.types import UTCDateTime, utcnow


class StoredQuote(SQLModel, table=True):
    """An evaluated basket kept for 15 minutes so the till can commit it by id."""

    __tablename__ = "quotes"

    id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    rules_version: str = Field(max_length=64)
    customer_id: str | None = Field(default=None, max_length=32)
    lane_id: str | None = Field(default=None, max_length=64)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class TransactionStatus(StrEnum):
    COMPLETED = "completed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class SaleTransaction(SQLModel, table=True):
    """A committed sale; `result` is the commit's response body, the source of the receipt."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ux_transactions_quote_id", "quote_id", unique=True),)

    id: str = Field(primary_key=True, max_length=32)
    store_id: str = Field(max_length=64)
    lane_id: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, max_length=32, index=True)
    quote_id: str | None = Field(default=None, max_length=32)  # unique: one sale per quote
    rules_version: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    subtotal: int = Field(sa_type=BigInteger)
    discount_total: int = Field(sa_type=BigInteger)
    burn_value: int = Field(default=0, sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)  # paid in money
    points_earned: int = Field(default=0, sa_type=BigInteger)
    points_burned: int = Field(default=0, sa_type=BigInteger)
    payment_method: str | None = Field(default=None, max_length=32)
    paid: int | None = Field(default=None, sa_type=BigInteger)
    change: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(default=TransactionStatus.COMPLETED.value, max_length=20)
    refunded_amount: int = Field(default=0, sa_type=BigInteger)
    stamps: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class TransactionLine(SQLModel, table=True):
    __tablename__ = "transaction_lines"
    __table_args__ = (
        Index("ux_transaction_lines_position", "transaction_id", "position", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    transaction_id: str = Field(foreign_key="transactions.id", max_length=32)
    position: int
    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    category: str = Field(max_length=64)
    qty_milli: int = Field(sa_type=BigInteger)
    unit_price: int = Field(sa_type=BigInteger)
    subtotal: int = Field(sa_type=BigInteger)
    discount: int = Field(sa_type=BigInteger)
    burn: int = Field(sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)
    # Stamp-card units this line added, by rule id (rolled back by refunds of the line).
    stamps: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"

    id: str = Field(primary_key=True, max_length=32)
    transaction_id: str = Field(foreign_key="transactions.id", max_length=32, index=True)
    amount: int = Field(sa_type=BigInteger)  # money returned to the customer
    points_earn_reversed: int = Field(default=0, sa_type=BigInteger)
    points_burn_returned: int = Field(default=0, sa_type=BigInteger)
    full: bool = False
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class RefundLine(SQLModel, table=True):
    """What one refund took back from one line; sums over refunds give what is left."""

    __tablename__ = "refund_lines"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    refund_id: str = Field(foreign_key="refunds.id", max_length=32, index=True)
    transaction_id: str = Field(max_length=32, index=True)
    position: int
    qty_milli: int = Field(sa_type=BigInteger)
    subtotal: int = Field(sa_type=BigInteger)
    discount: int = Field(sa_type=BigInteger)
    burn: int = Field(sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a till's `Idempotency-Key`, per API key, kept at least 24 h."""

    __tablename__ = "idempotency_keys"

    key_owner: str = Field(primary_key=True, max_length=64)  # hash of the API key
    key: str = Field(primary_key=True, max_length=255)
    endpoint: str = Field(max_length=100)
    request_hash: str = Field(max_length=64)
    status_code: int = 0
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class StampCounter(SQLModel, table=True):
    """Qualifying units bought so far, per customer per stamps rule."""

    __tablename__ = "stamp_counters"

    customer_id: str = Field(primary_key=True, foreign_key="customers.id", max_length=32)
    rule_id: str = Field(primary_key=True, max_length=64)
    count: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    PRINTED = "printed"
    FAILED = "failed"


class ReceiptOutbox(SQLModel, table=True):
    """A receipt to print, written in the same database transaction as the sale or refund."""

    __tablename__ = "receipt_outbox"
    __table_args__ = (Index("ix_receipt_outbox_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    transaction_id: str = Field(foreign_key="transactions.id", max_length=32, index=True)
    refund_id: str | None = Field(default=None, max_length=32)
    kind: str = Field(default="sale", max_length=10)  # sale | refund
    lane_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default=OutboxStatus.QUEUED.value, max_length=10)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
