"""A manual points adjustment by an operator (a goodwill credit, a correction): a new ledger
entry of kind `adjust` carrying the reason and the operator, never an edit of an old entry."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.customers.accounts import open_account
from pos_loyalty.errors import InvalidInput
from pos_loyalty.ledger.service import adjust_points, customer_entries
from pos_loyalty.storage import UnitOfWork

MAX_ADJUSTMENT = 10_000_000


@dataclass(frozen=True, slots=True)
class Adjustment:
    entry_id: int
    points: int
    balance: int
    note: str


def _check_reason(raw: str) -> str:
    reason = " ".join(raw.split())
    if not reason or any(unicodedata.category(ch) == "Cc" for ch in raw.replace("\n", " ")):
        raise InvalidInput(
            "reason: say why, in plain text (no control characters)",
            code="reason_invalid",
            details={"field": "reason"},
        )
    return reason


def adjust_points_by_operator(
    *,
    uow: UnitOfWork,
    operator: Operator,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
    expire_days: int,
) -> Adjustment:
    """Post the adjustment and its audit row in one transaction; a debit may not take the
    balance below zero (409 `insufficient_points`)."""
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise InvalidInput(
            f"points: a non-zero whole number of at most {MAX_ADJUSTMENT} either way",
            code="points_invalid",
            details={"field": "points"},
        )
    reason = _check_reason(reason)
    open_account(uow=uow, customer_id=customer_id)
    who = f"key {operator.key_id}" if operator.key_id is not None else operator.name
    note = f"{reason} ({who})"[:200]
    balance = adjust_points(
        uow=uow,
        customer_id=customer_id,
        points=points,
        now=now,
        note=note,
        expire_days=expire_days,
    )
    entry = customer_entries(uow=uow, customer_id=customer_id)[-1]
    assert entry.id is not None
    record_action(
        uow=uow,
        operator=operator,
        action=AuditAction.POINTS_ADJUSTED,
        customer_id=customer_id,
        details={"points": points, "reason": reason, "ledger_entry_id": entry.id},
    )
    uow.commit()
    return Adjustment(entry_id=entry.id, points=points, balance=balance, note=note)
