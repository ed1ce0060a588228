"""Merging two accounts of one person (a second card enrolled with another phone, say).

Everything live moves to the account that stays: cards, sales (so a refund of an old sale
reverses points where they now are), lifetime spend, coupons, stamps, and the points, lot by
lot with their expiry dates, as paired ledger entries (the ledger is never edited). The other
account is closed with `merged_into_id`; its ledger history stays under its id and is part of
the survivor's data export.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.accounts import open_account
from pos_loyalty.customers.models import Card
from pos_loyalty.customers.service import CustomerProfile, get_customer
from pos_loyalty.errors import InvalidInput
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.ledger.service import apply_to_customer, lot_state, post_entries
from pos_loyalty.sales.models import SaleTransaction, StampCounter
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.storage import UnitOfWork


def _move_points(
    uow: UnitOfWork, source: str, target: str, now: datetime
) -> tuple[int, list[LedgerEntry]]:
    """Debit every live lot of `source` (pinned to it) and credit `target` with a lot of the
    same size and expiry; a debt (points refunded after being spent) moves as a debit."""
    state = lot_state(uow=uow, customer_id=source)
    out, into = f"merged into {target}", f"merged from {source}"
    pairs: list[tuple[LedgerEntry, LedgerEntry]] = []
    for lot in state.lots:
        if lot.remaining <= 0:
            continue
        debit = LedgerEntry(
            customer_id=source,
            kind=EntryKind.ADJUST.value,
            points=-lot.remaining,
            created_at=now,
            lot_id=lot.entry_id,
            note=out,
        )
        credit = LedgerEntry(
            customer_id=target,
            kind=EntryKind.ADJUST.value,
            points=lot.remaining,
            created_at=now,
            expires_at=lot.expires_at,
            note=into,
        )
        pairs.append((debit, credit))
    if state.debt:
        pairs.append(
            (
                LedgerEntry(
                    customer_id=source,
                    kind=EntryKind.ADJUST.value,
                    points=state.debt,
                    created_at=now,
                    note=out,
                ),
                LedgerEntry(
                    customer_id=target,
                    kind=EntryKind.ADJUST.value,
                    points=-state.debt,
                    created_at=now,
                    note=into,
                ),
            )
        )
    entries = [entry for pair in pairs for entry in pair]
    post_entries(uow=uow, entries=entries)
    return state.balance, entries


def _move_stamps(uow: UnitOfWork, source: str, target: str, now: datetime) -> dict[str, int]:
    session = uow.session
    moved: dict[str, int] = {}
    for counter in list(
        session.exec(select(StampCounter).where(col(StampCounter.customer_id) == source))
    ):
        moved[counter.rule_id] = counter.count
        mine = session.get(StampCounter, (target, counter.rule_id))
        if mine is None:
            session.add(
                StampCounter(
                    customer_id=target, rule_id=counter.rule_id, count=counter.count, updated_at=now
                )
            )
        else:
            mine.count += counter.count
            mine.updated_at = now
            session.add(mine)
    session.flush()
    session.execute(delete(StampCounter).where(col(StampCounter.customer_id) == source))
    return moved


def merge_customers(
    *, uow: UnitOfWork, operator: Operator, source_id: str, target_id: str, now: datetime
) -> CustomerProfile:
    """Move `source_id`'s account into `target_id`'s in one transaction, audited on both."""
    if source_id == target_id:
        raise InvalidInput(
            "an account cannot be merged into itself",
            code="merge_same_customer",
            details={"field": "into"},
        )
    # Locked in id order, so two operators merging crosswise cannot deadlock.
    first, second = sorted((source_id, target_id))
    locked = {c: open_account(uow=uow, customer_id=c) for c in (first, second)}
    source = locked[source_id]
    session = uow.session
    points, entries = _move_points(uow, source_id, target_id, now)
    spend = source.lifetime_spend
    apply_to_customer(uow=uow, customer_id=source_id, points_delta=-points, spend_delta=-spend)
    apply_to_customer(uow=uow, customer_id=target_id, points_delta=points, spend_delta=spend)
    session.refresh(source)
    cards = (
        session.connection()
        .execute(
            update(Card).where(col(Card.customer_id) == source_id).values(customer_id=target_id)
        )
        .rowcount
    )
    sales = (
        session.connection()
        .execute(
            update(SaleTransaction)
            .where(col(SaleTransaction.customer_id) == source_id)
            .values(customer_id=target_id)
        )
        .rowcount
    )
    coupons = (
        session.connection()
        .execute(
            update(Coupon)
            .where(col(Coupon.owner_customer_id) == source_id)
            .values(owner_customer_id=target_id)
        )
        .rowcount
    )
    stamps = _move_stamps(uow, source_id, target_id, now)
    session.execute(delete(CustomerSegment).where(col(CustomerSegment.customer_id) == source_id))
    source.closed_at, source.merged_into_id = now, target_id
    source.phone_hash = f"merged:{source_id}"
    session.add(source)
    details: dict[str, Any] = {
        "from": source_id,
        "into": target_id,
        "points": points,
        "lifetime_spend": spend,
        "cards": int(cards or 0),
        "sales": int(sales or 0),
        "coupons": int(coupons or 0),
        "stamps": stamps,
        "ledger_entries": [e.id for e in entries],
    }
    for customer_id in (target_id, source_id):
        record_action(
            uow=uow,
            operator=operator,
            action=AuditAction.CUSTOMERS_MERGED,
            customer_id=customer_id,
            details=details,
        )
    uow.commit()
    session.expire_all()  # the balances changed by Core UPDATEs, not through these objects
    return get_customer(uow=uow, customer_id=target_id)
