"""Editing a customer's profile at their request: name, birthday, e-mail, consents.

A withdrawn consent takes effect in this commit: outreach lists (`segments export`, coupon
campaigns) read consents when they run, so nobody is contacted on a consent given back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.customers.accounts import open_account
from pos_loyalty.customers.emails import normalise_email
from pos_loyalty.customers.service import (
    CustomerProfile,
    _check_birthday,
    _check_name,
    get_customer,
)
from pos_loyalty.errors import InvalidInput
from pos_loyalty.storage import UnitOfWork

# `birthday=CLEAR` removes the date, `email=CLEAR_EMAIL` the address; None leaves either as it is.
CLEAR = date.min
CLEAR_EMAIL = ""


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    name: str | None = None
    birthday: date | None = None  # CLEAR to remove it
    email: str | None = None  # CLEAR_EMAIL to remove it
    consents: dict[str, bool] | None = None  # merged into the stored ones; False withdraws


def edit_profile(
    *, uow: UnitOfWork, operator: Operator, customer_id: str, changes: ProfileChanges
) -> CustomerProfile:
    """Apply the customer's corrections and record which fields changed (never their values,
    except consents, which are not personal data but the proof of what they allowed)."""
    customer = open_account(uow=uow, customer_id=customer_id)
    changed: list[str] = []
    if changes.name is not None:
        name = _check_name(changes.name)
        if name != customer.name:
            customer.name, changed = name, [*changed, "name"]
    if changes.birthday is not None:
        born = None if changes.birthday == CLEAR else changes.birthday
        _check_birthday(born)
        if born != customer.birthday:
            customer.birthday, changed = born, [*changed, "birthday"]
    if changes.email is not None:
        email = None if changes.email == CLEAR_EMAIL else normalise_email(changes.email)
        if email != customer.email:
            customer.email, changed = email, [*changed, "email"]
    consents_now: dict[str, bool] = {}
    if changes.consents is not None:
        if not changes.consents:
            raise InvalidInput(
                "consents: name at least one consent to change",
                code="consents_invalid",
                details={"field": "consents"},
            )
        merged = {**customer.consents, **changes.consents}
        consents_now = {k: v for k, v in changes.consents.items() if customer.consents.get(k) != v}
        if consents_now:
            customer.consents, changed = merged, [*changed, "consents"]
    if changed:
        uow.session.add(customer)
        record_action(
            uow=uow,
            operator=operator,
            action=AuditAction.PROFILE_EDITED,
            customer_id=customer_id,
            details={"fields": changed, **({"consents": consents_now} if consents_now else {})},
        )
        uow.commit()
    return get_customer(uow=uow, customer_id=customer_id)
