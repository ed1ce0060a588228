"""Everything the store keeps about one customer, as JSON (a subject access request, 152-FZ
art. 14): the profile, cards, points ledger, sales with their lines, coupons, stamps, RFM
segment, referrals (their own code, who brought them, whom they brought), the audit trail of
operator actions, and the same for accounts merged into this one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import SQLModel, col, select

from pos_loyalty.audit.models import AuditAction, AuditEntry
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.models import Card, Customer
from pos_loyalty.customers.referrals import Referral, ReferralCode
from pos_loyalty.errors import NotFound
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.sales.models import SaleTransaction, StampCounter, TransactionLine
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.storage import UnitOfWork

EXPORT_FORMAT = "pos-loyalty/customer-data/1"


def _rows(rows: Any, *, exclude: set[str] | None = None) -> list[dict[str, Any]]:
    return [
        row.model_dump(mode="json", exclude=exclude) for row in rows if isinstance(row, SQLModel)
    ]


def _referrals(uow: UnitOfWork, customer_id: str) -> dict[str, Any]:
    """The customer's own code (none once erased), the referral that brought them, and the
    ones they brought (by the newcomers' ids only: their names are theirs)."""
    session = uow.session
    code = session.exec(
        select(ReferralCode).where(col(ReferralCode.customer_id) == customer_id)
    ).first()
    referred_by = session.get(Referral, customer_id)
    return {
        "code": code.model_dump(mode="json", exclude={"customer_id"}) if code else None,
        "referred_by": referred_by.model_dump(mode="json") if referred_by else None,
        "referred": _rows(
            session.exec(
                select(Referral)
                .where(col(Referral.referrer_id) == customer_id)
                .order_by(col(Referral.created_at), col(Referral.new_customer_id))
            ),
            exclude={"referrer_id"},
        ),
    }


def _account(uow: UnitOfWork, customer: Customer) -> dict[str, Any]:
    """One account's data (the keyed phone hash is an index, not data about the person)."""
    session, cid = uow.session, customer.id
    sales = list(
        session.exec(
            select(SaleTransaction)
            .where(col(SaleTransaction.customer_id) == cid)
            .order_by(col(SaleTransaction.created_at))
        )
    )
    lines = list(
        session.exec(
            select(TransactionLine)
            .where(col(TransactionLine.transaction_id).in_([s.id for s in sales]))
            .order_by(col(TransactionLine.transaction_id), col(TransactionLine.position))
        )
    )
    sale_rows = []
    for sale in sales:
        data = sale.model_dump(mode="json", exclude={"result"})
        data["lines"] = [
            line.model_dump(mode="json", exclude={"id", "transaction_id"})
            for line in lines
            if line.transaction_id == sale.id
        ]
        sale_rows.append(data)
    return {
        "profile": customer.model_dump(mode="json", exclude={"phone_hash"}),
        "cards": _rows(session.exec(select(Card).where(col(Card.customer_id) == cid))),
        "ledger": _rows(
            session.exec(
                select(LedgerEntry)
                .where(col(LedgerEntry.customer_id) == cid)
                .order_by(col(LedgerEntry.id))
            )
        ),
        "sales": sale_rows,
        "coupons": _rows(
            session.exec(
                select(Coupon)
                .where(col(Coupon.owner_customer_id) == cid)
                .order_by(col(Coupon.created_at))
            )
        ),
        "stamps": _rows(
            session.exec(select(StampCounter).where(col(StampCounter.customer_id) == cid)),
            exclude={"customer_id"},
        ),
        "segment": _rows(
            session.exec(select(CustomerSegment).where(col(CustomerSegment.customer_id) == cid)),
            exclude={"customer_id"},
        ),
        "referrals": _referrals(uow, cid),
        "audit": _rows(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.customer_id) == cid)
                .order_by(col(AuditEntry.id))
            )
        ),
    }


def export_customer_data(
    *, uow: UnitOfWork, operator: Operator, customer_id: str, now: datetime
) -> dict[str, Any]:
    """The whole record as one JSON-ready dict; the export itself is audited."""
    customer = uow.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    merged = list(
        uow.session.exec(
            select(Customer)
            .where(col(Customer.merged_into_id) == customer_id)
            .order_by(col(Customer.created_at))
        )
    )
    record_action(
        uow=uow,
        operator=operator,
        action=AuditAction.DATA_EXPORTED,
        customer_id=customer_id,
        details={"merged_accounts": [m.id for m in merged]},
    )
    data = {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        "customer_id": customer_id,
        **_account(uow, customer),
        "merged_accounts": [{"customer_id": m.id, **_account(uow, m)} for m in merged],
    }
    uow.commit()
    return data
