"""Enrolment, profiles, loyalty QR images, identification."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Response

from api.deps import HubDep, MetricsDep, StoreDep, TillScope
from api.schemas import CustomerCreate, CustomerPublic, IdentifyRequest, IdentifyResponse
from pos_loyalty.customers.service import (
    enrol_customer,
    get_customer,
    identify_customer,
    loyalty_qr,
)
from pos_loyalty.errors import DomainError, InvalidInput

router = APIRouter(prefix="/v1", tags=["customers"])


@router.post("/customers", status_code=201, response_model=CustomerPublic)
def enrol(body: CustomerCreate, store: StoreDep, _: TillScope) -> CustomerPublic:
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
    qr = loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())
    return CustomerPublic.from_profile(profile, qr=qr)


def _qr_payload(store: StoreDep, customer_id: str) -> str:
    with store.uow() as uow:
        profile = get_customer(uow=uow, customer_id=customer_id)
    return loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())


@router.get("/customers/{customer_id}/qr.png", response_class=Response)
def qr_png(customer_id: str, store: StoreDep, _: TillScope) -> Response:
    buffer = io.BytesIO()
    segno.make_qr(_qr_payload(store, customer_id), error="m").save(buffer, kind="png", scale=8)
    return Response(
        buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@router.get("/customers/{customer_id}/qr.svg", response_class=Response)
def qr_svg(customer_id: str, store: StoreDep, _: TillScope) -> Response:
    buffer = io.BytesIO()
    segno.make_qr(_qr_payload(store, customer_id), error="m").save(buffer, kind="svg", scale=8)
    return Response(
        buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


@router.get("/customers/{customer_id}", response_model=CustomerPublic)
def profile(customer_id: str, store: StoreDep, _: TillScope) -> CustomerPublic:
    with store.uow() as uow:
        found = get_customer(uow=uow, customer_id=customer_id)
    qr = loyalty_qr(secret=store.secret, customer_id=found.id, now=store.now())
    return CustomerPublic.from_profile(found, qr=qr)


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
