"""`POST /v1/baskets/evaluate`: price a basket for the till and keep the quote for the commit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import StoreDep, TillScope
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.sales.service import LaneCustomerLookup, evaluate_basket

router = APIRouter(prefix="/v1", tags=["baskets"])


def lane_customer_lookup(request: Request) -> LaneCustomerLookup | None:
    """The lane's current customer (camera, scanner, till identify) for baskets that name none."""
    hub = getattr(request.app.state, "hub", None)
    if hub is None:
        return None

    def lookup(lane_id: str) -> str | None:
        current = hub.current_customer(lane_id) if hub.has_lane(lane_id) else None
        return current.customer_id if current is not None else None

    return lookup


@router.post("/baskets/evaluate")
def evaluate(
    body: BasketIn,
    request: Request,
    store: StoreDep,
    _: TillScope,
    explain: Annotated[bool, Query(description="say why each rule did not apply")] = False,
) -> JSONResponse:
    """The quote: lines, discounts with their rules, points, coupons, hints, tier, stamps."""
    result = evaluate_basket(
        store=store,
        basket=body,
        explain=explain,
        lane_customer=lane_customer_lookup(request),
    )
    return JSONResponse(result)
