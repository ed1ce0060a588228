"""Enrolment, profiles, loyalty QR images, identification."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import HubDep, MetricsDep, StoreDep, TillScope
from api.errors import ApiError
from api.identify_limits import IdentifyFailureLimiter
from api.schemas import (
    CardCreate,
    CardPublic,
    CouponHeldPublic,
    CustomerCreate,
    CustomerPublic,
    IdentifyRequest,
    IdentifyResponse,
    LedgerEntryPublic,
    LedgerPage,
    PointsExpiry,
    TierPublic,
)
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.coupons.wallet import active_coupons
from pos_loyalty.customers.referrals import referral_code_for
from pos_loyalty.customers.service import (
    IdMethod,
    add_card,
    enrol_customer,
    get_customer,
    identify_customer,
    loyalty_qr,
    loyalty_summary,
)
from pos_loyalty.errors import DomainError, InvalidInput
from pos_loyalty.ledger.pending import pending_state
from pos_loyalty.ledger.service import entries_page, ledger_balance

router = APIRouter(prefix="/v1", tags=["customers"])

# The id enrolment hands out (32 hex digits): anything else is a 422 naming `customer_id`, never a
# database lookup of arbitrary bytes (PostgreSQL refuses a NUL in a query parameter).
CustomerId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="The id enrolment returned (32 hex digits).")
]


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
            referred_by=body.referred_by,
            email=body.email,
        )
        referral_code = referral_code_for(uow=uow, customer_id=profile.id)  # made at enrolment
    qr = loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())
    public = CustomerPublic.from_profile(profile, qr=qr, with_email=True)
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
        held = active_coupons(
            uow=uow, customer_id=customer_id, now=store.now(), tz=store.settings.store.tz
        )
        pending = pending_state(
            uow=uow,
            customer_id=customer_id,
            now=store.now(),
            pending_days=store.rules.points.pending_days,
        )
    qr = loyalty_qr(secret=store.secret, customer_id=found.id, now=store.now())
    public = CustomerPublic.from_profile(found, qr=qr, with_email=True)
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
            "coupons": [CouponHeldPublic.from_held(c) for c in held],
            "points_pending": pending.of_balance(summary.balance),
            "points_debt": max(0, -summary.balance),
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
    request: Request,
    body: IdentifyRequest,
    store: StoreDep,
    hub: HubDep,
    metrics: MetricsDep,
    scope: TillScope,
) -> IdentifyResponse:
    """Who is this? With `lane_id`, the customer also becomes that lane's current customer.

    Failed identifications are limited per key and per lane (429 with Retry-After); a till key
    that looks a customer up by phone gets no card number and no QR payload (hq, admin: all)."""
    if body.lane_id is not None and not hub.has_lane(body.lane_id):
        raise InvalidInput(
            f"lane_id: no lane {body.lane_id!r} in this store's configuration",
            code="lane_unknown",
            details={"field": "lane_id"},
        )
    limiter: IdentifyFailureLimiter = request.app.state.identify_limiter
    key = str(getattr(request.state, "api_key_hash", ""))
    refusal = limiter.refusal(key=key, lane=body.lane_id)
    if refusal is not None:
        metrics.identifications.labels(body.method.value, "rate_limited").inc()
        raise ApiError(
            429,
            "too_many_failures",
            f"too many failed identifications from this {refusal.by} ({refusal.limit} within "
            f"{limiter.window_s} s); try again in {refusal.retry_after_s} s",
            details={"by": refusal.by, "limit": refusal.limit, "window_s": limiter.window_s},
            headers={"Retry-After": str(refusal.retry_after_s)},
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
            held = active_coupons(
                uow=uow, customer_id=found.id, now=store.now(), tz=store.settings.store.tz
            )
    except DomainError as exc:
        limiter.failed(key=key, lane=body.lane_id)
        metrics.identifications.labels(body.method.value, exc.code).inc()
        raise
    metrics.identifications.labels(body.method.value, "identified").inc()
    if body.lane_id is not None:
        hub.customer_identified(body.lane_id, found, body.method.value, source="till")
    customer = CustomerPublic.from_profile(
        found, qr=loyalty_qr(secret=store.secret, customer_id=found.id, now=store.now())
    )
    customer.coupons = [CouponHeldPublic.from_held(c) for c in held]
    if body.method is IdMethod.PHONE and scope is Scope.TILL:
        # A phone is typed, not carried: the card numbers and the QR (a credential) stay home.
        customer = customer.model_copy(update={"card_number": None, "card_numbers": [], "qr": None})
    return IdentifyResponse(method=body.method, customer=customer)
