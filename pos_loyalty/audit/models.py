"""The audit table: one row per operator action, written in the same transaction as the action.

`details` never holds personal data (no names, phones or birthdays), so an erasure leaves nothing
of the person in the log either: it says which fields changed, not what they were.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from pos_loyalty.ledger.models import BigId
from pos_loyalty.storage.types import UTCDateTime, utcnow


class AuditAction(StrEnum):
    PROFILE_EDITED = "profile_edited"
    DATA_EXPORTED = "data_exported"
    CUSTOMER_ERASED = "customer_erased"
    CUSTOMERS_MERGED = "customers_merged"
    POINTS_ADJUSTED = "points_adjusted"
    COUPONS_GENERATED = "coupons_generated"
    COUPONS_ISSUED_TO_SEGMENT = "coupons_issued_to_segment"


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_customer_id_id", "customer_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    action: str = Field(max_length=32)
    # The operator: the API key's id (admin scope), or None for the shell (`actor` says who).
    key_id: int | None = None
    actor: str = Field(max_length=100)
    customer_id: str | None = Field(default=None, max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
