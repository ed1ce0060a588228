"""The customer row an operator action works on: it must exist and not be closed."""

from __future__ import annotations

from sqlmodel import col, select

from pos_loyalty.customers.models import Customer
from pos_loyalty.errors import Conflict, NotFound
from pos_loyalty.storage import UnitOfWork


class CustomerClosed(Conflict):
    code = "customer_closed"


def open_account(*, uow: UnitOfWork, customer_id: str) -> Customer:
    """The customer, locked for this transaction on PostgreSQL (two operators queue); 404 when
    unknown, 409 `customer_closed` when erased or merged into another account."""
    customer = uow.session.exec(
        select(Customer).where(col(Customer.id) == customer_id).with_for_update()
    ).first()
    if customer is None:
        raise NotFound(f"no customer with id {customer_id!r}", code="customer_not_found")
    if customer.closed_at is not None:
        how = f"merged into {customer.merged_into_id}" if customer.merged_into_id else "erased"
        raise CustomerClosed(
            f"customer {customer_id} was {how}; the account is closed",
            details={"customer_id": customer_id, "merged_into": customer.merged_into_id},
        )
    return customer
