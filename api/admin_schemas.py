"""Bodies of the operator's routes (`/v1/admin/...`, `/v1/audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from api.schemas import DateText, EmailText, Name, Request

Reason = Annotated[str, StringConstraints(min_length=1, max_length=160)]
ConsentName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ProfileEdit(Request):
    """Only the fields given change; `"birthday": null` removes the date, `"email": null` the
    address; a consent set to false is withdrawn at once (no more outreach to this customer on
    it)."""

    name: Name | None = None
    birthday: DateText | None = None
    email: EmailText | None = None
    consents: dict[ConsentName, StrictBool] | None = Field(default=None, max_length=16)


class MergeRequest(Request):
    into: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        description="The account that stays (32 hex digits); this one is closed into it."
    )


class PointsAdjust(Request):
    points: StrictInt = Field(description="Signed: a credit > 0, a debit < 0.")
    reason: Reason


class AdjustmentPublic(BaseModel):
    customer_id: str
    ledger_entry_id: int
    points: int
    balance: int
    note: str


class ErasurePublic(BaseModel):
    customer_id: str
    erased: bool
    cards: int
    coupons_cancelled: int
    sales_kept: int
    merged_accounts: int


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    action: str
    key_id: int | None
    actor: str
    customer_id: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntryPublic]
    next_cursor: int | None
