"""Coupons for a campaign (admin scope, audited): bearer coupons to hand out, and a segment's
coupons with the contacts its customers allowed, for an SMS or e-mail service to send."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, StringConstraints

from api.deps import StoreDep
from api.routers.admin import OperatorDep
from api.schemas import Request
from pos_loyalty.coupons.campaigns import generate_coupons, issue_to_segment

router = APIRouter(prefix="/v1/admin", tags=["admin"])

RuleId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class GenerateRequest(Request):
    rule_id: RuleId
    count: Annotated[int, Field(ge=1, le=100_000)]


class GeneratedCoupons(BaseModel):
    rule_id: str
    coupons: list[dict[str, Any]]


class SegmentCampaign(Request):
    rule_id: RuleId
    segment: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    inactive_days: Annotated[int, Field(ge=0, le=36500)] = 0


class OutreachContact(BaseModel):
    customer_id: str
    name: str
    phone: str
    phone_in_clear: bool
    email: str  # only with the consent `email`, else ""
    channels: list[str]
    last_purchase: str
    coupon: dict[str, Any]


class SegmentCampaignResult(BaseModel):
    rule_id: str
    segment: str
    issued: int
    without_consent: int
    already_holding: int
    contacts: list[OutreachContact]


@router.post("/coupons/generate", status_code=201, response_model=GeneratedCoupons)
def generate(body: GenerateRequest, store: StoreDep, operator: OperatorDep) -> GeneratedCoupons:
    """`count` bearer coupons of the rule's coupon (a threshold reward or a personal offer)."""
    with store.uow(write=True) as uow:
        made = generate_coupons(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=operator,
            rule_id=body.rule_id,
            count=body.count,
            now=store.now(),
        )
    return GeneratedCoupons(rule_id=body.rule_id, coupons=[c.to_dict() for c in made])


@router.post("/campaigns/segment", status_code=201, response_model=SegmentCampaignResult)
def issue_segment(
    body: SegmentCampaign, store: StoreDep, operator: OperatorDep
) -> SegmentCampaignResult:
    """A coupon for each consenting customer of the segment, with the contacts they allowed
    (phone in clear only where the store keeps it and the customer consented to `sms`, e-mail
    only with the consent `email`); one reachable by neither gets none (`without_consent`)."""
    with store.uow(write=True) as uow:
        outreach = issue_to_segment(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=operator,
            rule_id=body.rule_id,
            segment=body.segment,
            inactive_days=body.inactive_days,
            now=store.now(),
        )
    return SegmentCampaignResult(
        rule_id=body.rule_id,
        segment=body.segment,
        issued=len(outreach.rows),
        without_consent=outreach.without_consent,
        already_holding=outreach.already_holding,
        contacts=[
            OutreachContact(
                customer_id=r.customer_id,
                name=r.name,
                phone=r.phone,
                phone_in_clear=r.phone_in_clear,
                email=r.email,
                channels=list(r.channels),
                last_purchase=r.last_purchase,
                coupon=r.coupon.to_dict(),
            )
            for r in outreach.rows
        ],
    )
