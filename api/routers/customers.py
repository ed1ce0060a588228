"""Enrolment, profiles, loyalty QR images, identification."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Path, Query, Response

from api.deps import HubDep, MetricsDep, StoreDep, TillScope
from api.schemas import (
    CardCreate,
    CardPublic,
    CustomerCreate,
    CustomerPublic,
    IdentifyRequest,
    IdentifyResponse,
    LedgerEntryPublic,
    LedgerPage,
    PointsExpiry,
    TierPublic,
)
from pos_loyalty.customers.referrals import record_referral, referral_code_for, referrer_of
from pos_loyalty.customers.service import (
    add_card,
    enrol_customer,
    get_customer,
    identify_customer,
    loyalty_qr,
)
from pos_loyalty.errors import DomainError, InvalidInput
from pos_loyalty.ledger.service import entries_page, ledger_balance
from pos_loyalty.sales.service import loyalty_summary

router = APIRouter(prefix="/v1", tags=["customers"])

# The id enrolment hands out (32 hex digits): anything else is a 422 naming `customer_id`, never a
# database lookup of arbitrary bytes (PostgreSQL refuses a NUL in a query parameter).
CustomerId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="The id enrolment returned (32 hex digits).")
]


@router.post("/customers", status_code=201, response_model=CustomerPublic)
def enrol(body: CustomerCreate, store: StoreDep, _: TillScope) -> CustomerPublic:
    if body.referred_by is not None:  # issue 16: an unknown code refuses before enrolling
        with store.uow() as uow:
            referrer_of(uow=uow, code=body.referred_by)
    with store.uow(write=True) as uow:
        profile = enrol_customer(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            phone=body.phone,
            name=body.name,
            birthday=body.birthday,
            card_number=body.card_number,
            consents=body.consents,
        )
        # issue 16: the newcomer's own referral code, and who brought them
        referral_code = referral_code_for(uow=uow, customer_id=profile.id)
        if body.referred_by is not None:
            record_referral(uow=uow, code=body.referred_by, new_customer_id=profile.id)
        uow.commit()
    qr = loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())
    public = CustomerPublic.from_profile(profile, qr=qr)
    return public.model_copy(update={"referral_code": referral_code})


@router.post("/customers/{customer_id}/cards", status_code=201, response_model=CardPublic)
def attach_card(
    customer_id: CustomerId, body: CardCreate, store: StoreDep, _: TillScope
) -> CardPublic:
    """Another card for the customer (a replacement, a family member's): the number of a card
    handed over, or `{}` to issue one. 409 `card_taken` if the card belongs to anyone already."""
    with store.uow(write=True) as uow:
        number, profile = add_card(
            uow=uow, settings=store.settings, customer_id=customer_id, card_number=body.card_number
        )
    qr = loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())
    return CardPublic(card_number=number, customer=CustomerPublic.from_profile(profile, qr=qr))


def _qr_payload(store: StoreDep, customer_id: str) -> str:
    with store.uow() as uow:
        profile = get_customer(uow=uow, customer_id=customer_id)
    return loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())


@router.get("/customers/{customer_id}/qr.png", response_class=Response)
def qr_png(customer_id: CustomerId, store: StoreDep, _: TillScope) -> Response:
    buffer = io.BytesIO()
    segno.make_qr(_qr_payload(store, customer_id), error="m").save(buffer, kind="png", scale=8)
    return Response(
        buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@router.get("/customers/{customer_id}/qr.svg", response_class=Response)
def qr_svg(customer_id: CustomerId, store: StoreDep, _: TillScope) -> Response:
    buffer = io.BytesIO()
    segno.make_qr(_qr_payload(store, customer_id), error="m").save(buffer, kind="svg", scale=8)
    return Response(
        buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


@router.get("/customers/{customer_id}", response_model=CustomerPublic)
def profile(customer_id: CustomerId, store: StoreDep, _: TillScope) -> CustomerPublic:
    with store.uow() as uow:
        found = get_customer(uow=uow, customer_id=customer_id)
        summary = loyalty_summary(uow=uow, rules=store.rules, customer_id=customer_id)
    qr = loyalty_qr(secret=store.secret, customer_id=found.id, now=store.now())
    public = CustomerPublic.from_profile(found, qr=qr)
    expiring = (
        PointsExpiry(points=summary.expiring_points, at=summary.expiring_at)
        if summary.expiring_points is not None and summary.expiring_at is not None
        else None
    )
    return public.model_copy(
        update={
            "balance": summary.balance,
            "tier": TierPublic(
                name=summary.tier, next=summary.next_tier, missing=summary.missing_for_next
            ),
            "points_expiring": expiring,
        }
    )


@router.get("/customers/{customer_id}/ledger", response_model=LedgerPage)
def ledger(
    customer_id: CustomerId,
    store: StoreDep,
    _: TillScope,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LedgerPage:
    """The points history, newest first, paged by `before=<next_cursor>`."""
    with store.uow() as uow:
        entries, cursor = entries_page(
            uow=uow, customer_id=customer_id, before_id=before, limit=limit
        )
        return LedgerPage(
            customer_id=customer_id,
            balance=ledger_balance(uow=uow, customer_id=customer_id),
            entries=[LedgerEntryPublic.model_validate(e, from_attributes=True) for e in entries],
            next_cursor=cursor,
        )


@router.post("/identify", response_model=IdentifyResponse)
def identify(
    body: IdentifyRequest, store: StoreDep, hub: HubDep, metrics: MetricsDep, _: TillScope
) -> IdentifyResponse:
    """Who is this? With `lane_id`, the customer also becomes that lane's current customer."""
    if body.lane_id is not None and not hub.has_lane(body.lane_id):
        raise InvalidInput(
            f"lane_id: no lane {body.lane_id!r} in this store's configuration",
            code="lane_unknown",
            details={"field": "lane_id"},
        )
    try:
        with store.uow() as uow:
            found = identify_customer(
                uow=uow,
                settings=store.settings,
                secret=store.secret,
                method=body.method,
                value=body.value,
                now=store.now(),
            )
    except DomainError as exc:
        metrics.identifications.labels(body.method.value, exc.code).inc()
        raise
    metrics.identifications.labels(body.method.value, "identified").inc()
    if body.lane_id is not None:
        hub.customer_identified(body.lane_id, found, body.method.value, source="till")
    qr = loyalty_qr(secret=store.secret, customer_id=found.id, now=store.now())
    return IdentifyResponse(method=body.method, customer=CustomerPublic.from_profile(found, qr=qr))
