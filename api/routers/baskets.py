"""`POST /v1/baskets/evaluate`: price a basket for the till and keep the quote for the commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response

from api.deps import TillStore
from api.json_io import body_schema, json_response, read_model
from api.sale_schemas import QuotePublic
from api.writers import written
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.sales.pricing import LaneCustomerLookup, Priced, price_basket
from pos_loyalty.sales.quotes import quote_row
from pos_loyalty.store import Store

T = TypeVar("T")

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


async def run_reads(store: Store, work: Callable[[], T]) -> T:
    """Reads on SQLite are local page-cache hits that cost less than a thread hop: they run on
    the event loop. On PostgreSQL each query is a network round trip: a worker thread waits."""
    if store.engine.dialect.name == "sqlite":
        return work()
    return await anyio.to_thread.run_sync(work)


@router.post("/baskets/evaluate", response_model=QuotePublic, openapi_extra=body_schema(BasketIn))
async def evaluate(
    request: Request,
    store: TillStore,
    explain: Annotated[bool, Query(description="say why each rule did not apply")] = False,
) -> Response:
    """The quote: lines, discounts with their rules, points, coupons, hints, tier, stamps."""
    basket = await read_model(request, BasketIn)
    now = store.now()
    lookup = lane_customer_lookup(request)

    def price() -> Priced:
        return price_basket(
            store=store, basket=basket, explain=explain, lane_customer=lookup, now=now
        )

    priced = await run_reads(store, price)
    await written(request.app.state.quote_writer, quote_row(basket=basket, priced=priced, now=now))
    request.app.state.hub.quote_evaluated(basket.lane_id, priced.result)  # the customer display
    return json_response(priced.result)
