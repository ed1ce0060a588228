"""Receipts of committed sales: the document as JSON, plain text, a PNG preview, and reprints.

The PNG is drawn by a renderer the composition root injects (`create_app(receipt_png=...)`): this
adapter may not import the printer driver or the simulated printer itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import HubDep, StoreDep, TillScope
from api.errors import ApiError
from api.sale_schemas import ReceiptPublic
from pos_loyalty.plain_text import PlainText
from pos_loyalty.receipts.build import build_receipt
from pos_loyalty.receipts.document import ReceiptDocument
from pos_loyalty.receipts.layout import SUPPORTED_COLUMNS, layout_receipt
from pos_loyalty.receipts.media import print_width
from pos_loyalty.receipts.preview import DEFAULT_PREVIEW_PROFILE, ReceiptPngRenderer
from pos_loyalty.receipts.reprint import queue_reprint
from pos_loyalty.receipts.text import render_text
from pos_loyalty.settings import PrinterConfig
from pos_loyalty.store import Store

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])

TransactionId = Annotated[str, Field(min_length=1, max_length=64)]


class ReprintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lane_id: Annotated[PlainText, Field(min_length=1, max_length=64)] | None = None
    refund_id: Annotated[PlainText, Field(min_length=1, max_length=64)] | None = None


RefundId = Annotated[
    str | None,
    Query(max_length=64, description="a refund of this sale: its slip instead of the receipt"),
]


def _document(store: Store, transaction_id: str, refund_id: str | None) -> ReceiptDocument:
    with store.uow() as uow:
        return build_receipt(
            uow=uow,
            store=store.settings.store,
            secret=store.secret,
            transaction_id=transaction_id,
            refund_id=refund_id,
        )


def _lane_printer(store: Store, lane_id: str | None) -> PrinterConfig | None:
    lane = next((lane for lane in store.settings.lanes if lane.id == lane_id), None)
    return lane.printer if lane is not None else None


@router.get("/{transaction_id}.txt", response_class=Response)
def receipt_text(
    transaction_id: str,
    store: StoreDep,
    _: TillScope,
    refund_id: RefundId = None,
    columns: Annotated[
        int | None,
        Query(description="30, 32, 42 or 48; default: what the lane's printer and roll fit"),
    ] = None,
) -> Response:
    if columns is not None and columns not in SUPPORTED_COLUMNS:
        raise ApiError(
            422,
            "validation_error",
            f"columns must be one of {', '.join(map(str, SUPPORTED_COLUMNS))}, not {columns}",
            details={"field": "columns"},
        )
    document = _document(store, transaction_id, refund_id)
    if columns is None:
        printer = _lane_printer(store, document.header.lane_id)
        columns = (
            print_width(printer.profile, printer.width_mm).layout_columns
            if printer is not None
            else 42
        )
    text = render_text(layout_receipt(document, columns))
    return Response(text, media_type="text/plain; charset=utf-8")


@router.get("/{transaction_id}.png", response_class=Response)
def receipt_png(
    transaction_id: str,
    request: Request,
    store: StoreDep,
    _: TillScope,
    refund_id: RefundId = None,
    profile: Annotated[
        str | None, Query(max_length=64, description="printer model; default: the lane's")
    ] = None,
    width_mm: Annotated[int | None, Query(description="58 or 80; default: the lane's")] = None,
) -> Response:
    renderer: ReceiptPngRenderer | None = getattr(request.app.state, "receipt_png", None)
    if renderer is None:
        raise ApiError(
            501,
            "preview_unavailable",
            "this server was started without a receipt renderer; use the .txt or JSON form, "
            "or run `pos-loyalty serve`/`demo`, which provide one",
        )
    if width_mm is not None and width_mm not in (58, 80):
        raise ApiError(
            422,
            "validation_error",
            f"width_mm must be 58 or 80, not {width_mm}",
            details={"field": "width_mm"},
        )
    document = _document(store, transaction_id, refund_id)
    printer = _lane_printer(store, document.header.lane_id)
    chosen_profile = profile or (printer.profile if printer else DEFAULT_PREVIEW_PROFILE)
    chosen_width = width_mm or (printer.width_mm if printer else None)
    try:
        png = renderer(document, profile=chosen_profile, width_mm=chosen_width)
    except ValueError as exc:  # an unknown printer model
        raise ApiError(422, "unknown_profile", str(exc), details={"field": "profile"}) from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{transaction_id}", response_model=ReceiptPublic)
def receipt_document(
    transaction_id: str, store: StoreDep, _: TillScope, refund_id: RefundId = None
) -> Response:
    """The receipt as a document (the model documents it; the JSON is the document's own)."""
    return JSONResponse(_document(store, transaction_id, refund_id).to_dict())


@router.post("/{transaction_id}/print", status_code=202)
def reprint(
    transaction_id: str,
    store: StoreDep,
    hub: HubDep,
    _: TillScope,
    body: Annotated[ReprintRequest | None, Body()] = None,
) -> dict[str, Any]:
    with store.uow(write=True) as uow:
        queued = queue_reprint(
            uow=uow,
            settings=store.settings,
            transaction_id=transaction_id,
            now=store.now(),
            lane_id=body.lane_id if body else None,
            refund_id=body.refund_id if body else None,
        )
    hub.receipt_queued(queued.lane_id)
    return queued.to_dict()
