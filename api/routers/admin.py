"""The operator's tools for a customer's data (152-FZ) and points: admin-scope keys only, and
every action kept in the audit log with the key that did it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.admin_schemas import (
    AdjustmentPublic,
    AuditEntryPublic,
    AuditPage,
    ErasurePublic,
    MergeRequest,
    PointsAdjust,
    ProfileEdit,
)
from api.deps import AdminScope, StoreDep
from api.errors import ApiError
from api.routers.customers import CustomerId
from api.schemas import CustomerPublic
from pos_loyalty.apikeys.service import key_of
from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, audit_page
from pos_loyalty.customers.edit import CLEAR, CLEAR_EMAIL, ProfileChanges, edit_profile
from pos_loyalty.customers.erase import erase_customer
from pos_loyalty.customers.export import export_customer_data
from pos_loyalty.customers.merge import merge_customers
from pos_loyalty.customers.service import CustomerProfile, loyalty_qr
from pos_loyalty.ledger.adjust import adjust_points_by_operator

router = APIRouter(prefix="/v1", tags=["admin"])


async def current_operator(request: Request, store: StoreDep, _: AdminScope) -> Operator:
    """The admin key making the request (checked fresh: a revoked key acts no more)."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    with store.uow() as uow:
        key = key_of(uow=uow, token=token)
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
    return Operator(key_id=key.id, name=key.label or key.scope)


OperatorDep = Annotated[Operator, Depends(current_operator)]


def _public(store: StoreDep, profile: CustomerProfile) -> CustomerPublic:
    qr = loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())
    return CustomerPublic.from_profile(profile, qr=qr, with_email=True)


@router.patch("/admin/customers/{customer_id}", response_model=CustomerPublic)
def edit(
    customer_id: CustomerId, body: ProfileEdit, store: StoreDep, operator: OperatorDep
) -> CustomerPublic:
    """Correct a name, birthday or e-mail, give or withdraw consents (effective at once)."""
    birthday, email = body.birthday, body.email
    if "birthday" in body.model_fields_set and birthday is None:
        birthday = CLEAR
    if "email" in body.model_fields_set and email is None:
        email = CLEAR_EMAIL
    changes = ProfileChanges(name=body.name, birthday=birthday, email=email, consents=body.consents)
    with store.uow(write=True) as uow:
        profile = edit_profile(uow=uow, operator=operator, customer_id=customer_id, changes=changes)
    return _public(store, profile)


@router.get("/admin/customers/{customer_id}/export")
def export(customer_id: CustomerId, store: StoreDep, operator: OperatorDep) -> dict[str, Any]:
    """Everything stored about the customer (and accounts merged into theirs), as JSON."""
    with store.uow(write=True) as uow:
        return export_customer_data(
            uow=uow, operator=operator, customer_id=customer_id, now=store.now()
        )


@router.post("/admin/customers/{customer_id}/erase", response_model=ErasurePublic)
def erase(customer_id: CustomerId, store: StoreDep, operator: OperatorDep) -> ErasurePublic:
    """Remove the person; their sales and ledger stay for accounting under a bare id."""
    with store.uow(write=True) as uow:
        done = erase_customer(uow=uow, operator=operator, customer_id=customer_id, now=store.now())
    return ErasurePublic(customer_id=customer_id, erased=True, **done)


@router.post("/admin/customers/{customer_id}/merge", response_model=CustomerPublic)
def merge(
    customer_id: CustomerId, body: MergeRequest, store: StoreDep, operator: OperatorDep
) -> CustomerPublic:
    """Close this account into `into`: cards, points, sales, coupons and stamps move there."""
    with store.uow(write=True) as uow:
        profile = merge_customers(
            uow=uow,
            operator=operator,
            source_id=customer_id,
            target_id=body.into,
            now=store.now(),
        )
    return _public(store, profile)


@router.post(
    "/admin/customers/{customer_id}/points", status_code=201, response_model=AdjustmentPublic
)
def adjust(
    customer_id: CustomerId, body: PointsAdjust, store: StoreDep, operator: OperatorDep
) -> AdjustmentPublic:
    """A manual credit or debit with its reason, as a new ledger entry."""
    with store.uow(write=True) as uow:
        done = adjust_points_by_operator(
            uow=uow,
            operator=operator,
            customer_id=customer_id,
            points=body.points,
            reason=body.reason,
            now=store.now(),
            expire_days=store.rules.points.expire_days,
        )
    return AdjustmentPublic(
        customer_id=customer_id,
        ledger_entry_id=done.entry_id,
        points=done.points,
        balance=done.balance,
        note=done.note,
    )


@router.get("/audit", response_model=AuditPage)
def audit(
    store: StoreDep,
    _: AdminScope,
    customer_id: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    action: AuditAction | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Operator actions, newest first, paged by `before=<next_cursor>`."""
    with store.uow() as uow:
        rows, cursor = audit_page(
            uow=uow, customer_id=customer_id, action=action, before_id=before, limit=limit
        )
        return AuditPage(
            entries=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows],
            next_cursor=cursor,
        )
