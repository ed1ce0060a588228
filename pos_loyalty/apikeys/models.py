"""API keys: only the SHA-256 of each token is stored; the token is shown once at creation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from pos_loyalty.storage.types import UTCDateTime, utcnow


class Scope(StrEnum):
    TILL = "till"
    HQ = "hq"
    ADMIN = "admin"
    STORE = "store"  # a store pulling its rule bundles from head office


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    scope: str = Field(max_length=16)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
