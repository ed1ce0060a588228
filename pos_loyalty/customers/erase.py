"""Erasure on request (152-FZ art. 21): the person is removed, the accounting stays.

The customer row keeps only its random id, closed: name, phone (plain, masked and its lookup
hash), e-mail, birthday and consents are gone, cards are deleted (nobody can be identified by them),
live coupons are cancelled, stamps and the RFM segment dropped, stored quotes deleted, and the
name and masked phone recorded on their receipts and in kept till answers replaced. Ledger
entries and sales stay, tied to the bare id, so the books and `ledger verify` still add up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.customers.accounts import open_account
from pos_loyalty.customers.models import Card, Customer
from pos_loyalty.customers.referrals import ReferralCode
from pos_loyalty.sales.models import (
    IdempotencyRecord,
    SaleTransaction,
    StampCounter,
    StoredQuote,
)
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.storage import UnitOfWork

# What an erased customer's receipts show instead of a name and a phone.
ERASED = "—"


def _scrubbed(body: dict[str, Any], customer_id: str) -> dict[str, Any] | None:
    """The body with the customer's name and phone replaced, or None if it is not theirs."""
    shown = body.get("customer")
    if not isinstance(shown, dict) or shown.get("id") != customer_id:
        return None
    return {**body, "customer": {**shown, "name": ERASED, "phone": ERASED}}


def _erase_one(uow: UnitOfWork, customer: Customer, now: datetime) -> dict[str, int]:
    session, customer_id = uow.session, customer.id
    customer.name = ""
    customer.phone_hash = f"erased:{customer_id}"
    customer.phone_e164 = None
    customer.phone_masked = ""
    customer.birthday = None
    customer.email = None
    customer.consents = {}
    customer.closed_at = customer.closed_at or now
    session.add(customer)
    cards = (
        session.connection()
        .execute(delete(Card).where(col(Card.customer_id) == customer_id))
        .rowcount
    )
    cancelled = (
        session.connection()
        .execute(
            update(Coupon)
            .where(
                col(Coupon.owner_customer_id) == customer_id,
                col(Coupon.status) == CouponStatus.ISSUED.value,
            )
            .values(status=CouponStatus.CANCELLED.value, cancelled_at=now)
        )
        .rowcount
    )
    session.execute(delete(StampCounter).where(col(StampCounter.customer_id) == customer_id))
    session.execute(delete(CustomerSegment).where(col(CustomerSegment.customer_id) == customer_id))
    session.execute(delete(StoredQuote).where(col(StoredQuote.customer_id) == customer_id))
    session.execute(delete(ReferralCode).where(col(ReferralCode.customer_id) == customer_id))
    sales = list(
        session.exec(select(SaleTransaction).where(col(SaleTransaction.customer_id) == customer_id))
    )
    for sale in sales:
        body = _scrubbed(sale.result, customer_id)
        if body is not None:
            sale.result = body
            session.add(sale)
    if sales:
        since = min(sale.created_at for sale in sales)
        kept = session.exec(
            select(IdempotencyRecord).where(col(IdempotencyRecord.created_at) >= since)
        )
        for record in kept:
            body = _scrubbed(record.response, customer_id)
            if body is not None:
                record.response = body
                session.add(record)
    return {
        "cards": int(cards or 0),
        "coupons_cancelled": int(cancelled or 0),
        "sales_kept": len(sales),
    }


def erase_customer(
    *, uow: UnitOfWork, operator: Operator, customer_id: str, now: datetime
) -> dict[str, int]:
    """Anonymise the customer, and accounts merged into theirs, in one transaction; returns
    what was removed and kept (also what the audit row says)."""
    customer = open_account(uow=uow, customer_id=customer_id)
    merged = list(
        uow.session.exec(select(Customer).where(col(Customer.merged_into_id) == customer_id))
    )
    totals = _erase_one(uow, customer, now)
    for account in merged:
        for key, value in _erase_one(uow, account, now).items():
            totals[key] += value
    totals["merged_accounts"] = len(merged)
    record_action(
        uow=uow,
        operator=operator,
        action=AuditAction.CUSTOMER_ERASED,
        customer_id=customer_id,
        details=dict(totals),
    )
    uow.commit()
    return totals
