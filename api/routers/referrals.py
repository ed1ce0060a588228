"""A customer's referral code and how many friends it brought (for the till or an app)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StoreDep, TillScope
from api.routers.customers import CustomerId
from pos_loyalty.customers.referrals import referral_stats

router = APIRouter(prefix="/v1", tags=["customers"])


class ReferralPublic(BaseModel):
    customer_id: str
    code: str
    referred: int  # friends who enrolled with the code
    rewarded: int  # of them, those whose first sale earned the reward


@router.get("/customers/{customer_id}/referral", response_model=ReferralPublic)
def referral(customer_id: CustomerId, store: StoreDep, _: TillScope) -> ReferralPublic:
    with store.uow(write=True) as uow:
        code, referred, rewarded = referral_stats(uow=uow, customer_id=customer_id)
        uow.commit()
    return ReferralPublic(customer_id=customer_id, code=code, referred=referred, rewarded=rewarded)
