"""Commits and refunds: `Idempotency-Key` required; each sale or refund is all-or-nothing."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import StoreDep, TillScope, TillStore
from api.errors import ApiError
from api.json_io import body_schema, json_response, read_json
from api.routers.baskets import lane_customer_lookup
from api.sale_schemas import RefundPublic, SalePublic
from api.schemas import BasketCommit, QuoteCommit, RefundIn
from api.writers import written
from pos_loyalty.errors import NotFound
from pos_loyalty.sales.commit import Payment, commit_job
from pos_loyalty.sales.idempotency import IN_FLIGHT, Outcome, run_idempotent
from pos_loyalty.sales.models import SaleTransaction
from pos_loyalty.sales.refund import refund_sale
from pos_loyalty.sales.sale_writer import SaleWriter
from pos_loyalty.security import hash_api_key

router = APIRouter(prefix="/v1", tags=["transactions"])

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="a unique key per sale attempt; a retry with the same key and body gets the "
        "first response",
    ),
]


def _key(value: str | None) -> str:
    if value is None or not value.strip():
        raise ApiError(
            400,
            "idempotency_key_required",
            "the Idempotency-Key header is required (a new random key per sale attempt)",
        )
    if len(value) > 255:
        raise ApiError(400, "idempotency_key_invalid", "Idempotency-Key is longer than 255")
    return value.strip()


def _key_owner(request: Request) -> str:
    """Keys are scoped by API key: two tills may use the same Idempotency-Key."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return hash_api_key(token)


def _validate(model: type[Any], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _respond(outcome: Outcome) -> Response:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return json_response(outcome.body, status_code=outcome.status, headers=headers)


@router.post(
    "/transactions",
    status_code=201,
    response_model=SalePublic,
    openapi_extra=body_schema(QuoteCommit | BasketCommit),
)
async def commit(
    request: Request,
    store: TillStore,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Commit `{"quote_id"}` or a full basket; 201 with the quote, transaction id, coupons
    issued and the balance after."""
    key = _key(idempotency_key)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"type": "dict_type", "loc": ("body",), "msg": "Input should be a valid dictionary"}]
        )
    parsed: QuoteCommit | BasketCommit
    parsed = _validate(QuoteCommit if "quote_id" in body else BasketCommit, body)
    payment = Payment(parsed.payment.method, parsed.payment.paid) if parsed.payment else None
    job = commit_job(
        store=store,
        key_owner=_key_owner(request),
        idempotency_key=key,
        body=body,
        quote_id=parsed.quote_id if isinstance(parsed, QuoteCommit) else None,
        basket=parsed if isinstance(parsed, BasketCommit) else None,
        payment=payment,
        lane_customer=lane_customer_lookup(request),
    )
    sale_writer: SaleWriter | None = request.app.state.sale_writer
    if sale_writer is not None:  # SQLite: committed with the other tills' sales, one fsync
        with IN_FLIGHT.hold(job.key_owner, job.key):
            outcome = await written(sale_writer, job)  # a refusal is raised here
    else:
        # PostgreSQL: a dozen round trips in a worker thread while the event loop serves the
        # other tills.
        outcome = await anyio.to_thread.run_sync(run_idempotent, store, job)
    hub = getattr(request.app.state, "hub", None)
    lane_id = outcome.body.get("lane_id")
    fresh_sale = outcome.status == 201 and not outcome.replayed
    if hub is not None and fresh_sale and lane_id and hub.has_lane(lane_id):
        hub.clear_customer(lane_id)  # the lane waits for the next customer
        hub.receipt_queued(lane_id)  # its printer prints the receipt now, not at the next poll
    return _respond(outcome)


@router.get("/transactions/{transaction_id}")
def transaction(transaction_id: str, store: StoreDep, _: TillScope) -> JSONResponse:
    """The committed sale as the commit answered it, with its refund status."""
    with store.uow() as uow:
        sale = uow.session.get(SaleTransaction, transaction_id)
        if sale is None:
            raise NotFound(f"no transaction {transaction_id!r}", code="transaction_not_found")
        body = {**sale.result, "status": sale.status, "refunded_amount": sale.refunded_amount}
    return JSONResponse(body)


@router.post("/transactions/{transaction_id}/refund", response_model=RefundPublic)
def refund(
    transaction_id: str,
    request: Request,
    store: StoreDep,
    _: TillScope,
    body: Annotated[dict[str, Any], Body()],
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Refund `{"lines":[{"sku","qty"}]}` or `{}` for everything left; 200 with what was
    reversed (money, points, stamps, coupons)."""
    key = _key(idempotency_key)
    parsed: RefundIn = _validate(RefundIn, body)
    outcome = refund_sale(
        store=store,
        key_owner=_key_owner(request),
        idempotency_key=key,
        body=body,
        transaction_id=transaction_id,
        lines=[(ln.sku, ln.qty) for ln in parsed.lines] if parsed.lines is not None else None,
    )
    hub = getattr(request.app.state, "hub", None)
    if hub is not None and outcome.status == 200 and not outcome.replayed:
        hub.receipt_queued(None)  # the refund slip, on the sale's lane
    return _respond(outcome)
