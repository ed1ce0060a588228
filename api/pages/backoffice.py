"""`/store`: the store's back office on a 1366×768 screen.

Devices and lanes update live (one stream merging every lane's events triggers a re-fetch of the
live block); a customer is found by phone or card; a receipt is reprinted through the same service
as `POST /v1/receipts/{id}/print`; the program is shown rule by rule in words, with where it
comes from (config.toml, or head office's bundle and how the last pull went).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import RedirectResponse, Response

from api.pages.program import rules_in_words
from api.pages.render import render, words_for
from api.pages.session import checked_form, page_scope
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.customers.service import IdMethod, get_customer, identify_customer, loyalty_summary
from pos_loyalty.errors import DomainError
from pos_loyalty.hq.local import local_status
from pos_loyalty.lanes import QUOTE, LaneHub, Subscription
from pos_loyalty.ledger.pending import pending_state
from pos_loyalty.ledger.service import entries_page
from pos_loyalty.receipts.reprint import queue_reprint
from pos_loyalty.reports.customer_coupons import customer_coupons
from pos_loyalty.reports.figures import local_day, store_figures
from pos_loyalty.store import Store

router = APIRouter(include_in_schema=False)
StorePage = Annotated[Scope, Depends(page_scope(Scope.TILL))]

KEEPALIVE_S = 15.0
QUERY_MAX = 120


def _lanes(hub: LaneHub, store: Store) -> list[dict[str, Any]]:
    """Each lane and who is at it now (short name and masked phone)."""
    lanes = []
    for lane_id in hub.lane_ids:
        current = hub.current_customer(lane_id)
        who = None
        if current is not None:
            with contextlib.suppress(DomainError), store.uow() as uow:
                profile = get_customer(uow=uow, customer_id=current.customer_id)
                who = {"name": profile.short_name, "phone": profile.phone_masked}
        lanes.append(
            {"id": lane_id, "customer": who, "method": current.method if current else None}
        )
    return lanes


def _live(request: Request) -> dict[str, Any]:
    store: Store = request.app.state.store
    hub: LaneHub = request.app.state.hub
    start, end = local_day(store.now(), store.settings.store.tz)
    with store.uow() as uow:
        today = store_figures(uow=uow, since=start, until=end)
    return {"devices": hub.devices(), "lanes": _lanes(hub, store), "today": today}


def _program(request: Request) -> dict[str, Any]:
    """The running rules in words, and where they come from: config.toml, or head office's
    bundle (since when, the one waiting for its moment, how the last pull went)."""
    store: Store = request.app.state.store
    rules = store.rules
    sync = None
    if store.settings.hq is not None:
        with store.uow() as uow:
            sync = local_status(uow=uow)
    return {
        "version": rules.version,
        "rules": rules_in_words(list(rules.config.rules), words_for(request)),
        "source": Path(store.settings.source).name,
        "hq": sync,
    }


def _page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    context = {"live": _live(request), "program": _program(request), "found": None, **extra}
    return render(request, "store.html", context, status_code=status_code)


@router.get("/store")
def store_page(
    request: Request,
    _: StorePage,
    reprinted: Annotated[str | None, Query(max_length=64)] = None,
    lane: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    notice = {"transaction": reprinted, "lane": lane} if reprinted else None
    return _page(request, notice=notice)


@router.get("/store/live")
def store_live(request: Request, _: StorePage) -> Response:
    """The live block alone (devices, lanes, today), fetched after each event."""
    return render(request, "store_live.html", {"live": _live(request)})


def _find(store: Store, query: str) -> Any:
    """A card number (12+ digits, the card's checksum) or else a phone, as the till identifies."""
    digits = "".join(ch for ch in query if ch.isdigit())
    methods = [IdMethod.CARD, IdMethod.PHONE] if len(digits) >= 12 else [IdMethod.PHONE]
    error: DomainError | None = None
    for method in methods:
        try:
            with store.uow() as uow:
                return identify_customer(
                    uow=uow,
                    settings=store.settings,
                    secret=store.secret,
                    method=method,
                    value=query,
                    now=store.now(),
                )
        except DomainError as exc:
            error = error or exc
    assert error is not None
    raise error


@router.get("/store/customers")
def customer_search(
    request: Request, _: StorePage, q: Annotated[str, Query(max_length=QUERY_MAX)] = ""
) -> Response:
    store: Store = request.app.state.store
    query = q.strip()
    if not query:
        return RedirectResponse("/store", status_code=303)
    try:
        profile = _find(store, query)
    except DomainError as exc:
        return _page(request, query=query, search_error=exc.message, status_code=404)
    with store.uow() as uow:
        summary = loyalty_summary(uow=uow, rules=store.rules, customer_id=profile.id)
        pending = pending_state(
            uow=uow,
            customer_id=profile.id,
            now=store.now(),
            pending_days=store.rules.points.pending_days,
        )
        coupons = customer_coupons(uow=uow, customer_id=profile.id)
        rows, _cursor = entries_page(uow=uow, customer_id=profile.id, before_id=None, limit=30)
        entries = [
            {"created_at": e.created_at, "kind": e.kind, "points": e.points, "note": e.note}
            for e in rows
        ]
    found = {
        "profile": profile,
        "summary": summary,
        "pending": {"points": pending.of_balance(summary.balance), "until": pending.until},
        "coupons": coupons,
        "entries": entries,
    }
    return _page(request, query=query, found=found)


@router.post("/store/reprint")
async def reprint(request: Request, _: StorePage) -> Response:
    """The reprint form: queued on the sale's lane (or the one chosen), the copy marked «КОПИЯ»."""
    fields = await checked_form(request)
    store: Store = request.app.state.store
    transaction_id = fields.get("transaction_id", "").strip()[:64]
    lane_id = fields.get("lane_id", "").strip()[:64] or None
    try:
        with store.uow(write=True) as uow:
            queued = queue_reprint(
                uow=uow,
                settings=store.settings,
                transaction_id=transaction_id,
                now=store.now(),
                lane_id=lane_id,
            )
    except DomainError as exc:
        return _page(
            request,
            reprint_error=exc.message,
            reprint_form={"transaction_id": transaction_id, "lane_id": lane_id or ""},
            status_code=exc.status,
        )
    return RedirectResponse(
        f"/store?reprinted={queued.transaction_id}&lane={queued.lane_id or ''}", status_code=303
    )


@router.get("/store/events")
async def store_events(request: Request, _: StorePage) -> StreamingResponse:
    """Every lane's events in one stream (a browser keeps few connections per site), reduced
    to what the page needs to know: which lane, what happened. The page then re-fetches."""
    hub: LaneHub = request.app.state.hub
    subscriptions = [hub.subscribe(lane_id) for lane_id in hub.lane_ids]

    async def stream() -> AsyncIterator[bytes]:
        pending: dict[asyncio.Task[Any], Subscription] = {}
        try:
            yield b": connected\n\n"
            pending = {asyncio.ensure_future(s.queue.get()): s for s in subscriptions}
            while not await request.is_disconnected():
                if not pending:
                    await asyncio.sleep(KEEPALIVE_S)
                    yield b": keep-alive\n\n"
                    continue
                done, _ = await asyncio.wait(
                    pending, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    yield b": keep-alive\n\n"
                    continue
                for task in done:
                    sub = pending.pop(task)
                    event = task.result()
                    if event is None:  # the service is stopping
                        return
                    pending[asyncio.ensure_future(sub.queue.get())] = sub
                    if event.type == QUOTE:
                        continue  # a till pricing a basket changes nothing on this page
                    body = json.dumps({"lane_id": event.lane_id, "type": event.type})
                    yield f"id: {event.id}\nevent: {event.type}\ndata: {body}\n\n".encode()
        finally:
            for task in pending:
                task.cancel()
            for sub in subscriptions:
                hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
