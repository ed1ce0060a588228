"""Recording operator actions and reading them back (`GET /v1/audit`, `pos-loyalty audit list`)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from pos_loyalty.audit.models import AuditAction, AuditEntry
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: an admin API key (its id and label) or a shell user (`key_id` None)."""

    key_id: int | None
    name: str

    @property
    def actor(self) -> str:
        """How the log names them; a key's label is text from outside: no control bytes."""
        name = "".join(ch for ch in self.name if unicodedata.category(ch) != "Cc")
        return f"key {self.key_id} ({name})" if self.key_id is not None else name


def record_action(
    *,
    uow: UnitOfWork,
    operator: Operator,
    action: AuditAction,
    customer_id: str | None,
    details: dict[str, Any],
) -> AuditEntry:
    """Add the audit row to the action's own transaction: both are kept, or neither."""
    entry = AuditEntry(
        action=action.value,
        key_id=operator.key_id,
        actor=operator.actor[:100],
        customer_id=customer_id,
        details=details,
    )
    uow.session.add(entry)
    uow.session.flush()
    return entry


def audit_page(
    *,
    uow: UnitOfWork,
    customer_id: str | None = None,
    action: AuditAction | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditEntry], int | None]:
    """Newest first; the cursor for the next page, or None when this was the last."""
    stmt = select(AuditEntry)
    if customer_id is not None:
        stmt = stmt.where(col(AuditEntry.customer_id) == customer_id)
    if action is not None:
        stmt = stmt.where(col(AuditEntry.action) == action.value)
    if before_id is not None:
        stmt = stmt.where(col(AuditEntry.id) < before_id)
    rows = list(uow.session.exec(stmt.order_by(col(AuditEntry.id).desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
