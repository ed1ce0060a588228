"""A lane's live events (server-sent events) and the state of every device."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from api.deps import HubDep, TillScope
from api.errors import ApiError
from pos_loyalty.errors import NotFound
from pos_loyalty.lanes import LaneEvent

router = APIRouter(prefix="/v1", tags=["lanes"])

KEEPALIVE_S = 15.0
# An event id is a count of microseconds (see LaneHub): 20 ASCII digits hold any of them.
LAST_EVENT_ID_MAX_DIGITS = 20


def parse_last_event_id(value: str | None) -> int | None:
    """The `Last-Event-ID` a reconnecting follower sends: ASCII digits only, or a 400.

    `str.isdigit` also admits "²" and "٣", which `int` then refuses or reads as another number.
    """
    if value is None or value == "":
        return None
    if len(value) > LAST_EVENT_ID_MAX_DIGITS or not (value.isascii() and value.isdigit()):
        raise ApiError(
            400,
            "last_event_id_invalid",
            f"Last-Event-ID must be an event id: 1 to {LAST_EVENT_ID_MAX_DIGITS} ASCII digits",
            details={"header": "Last-Event-ID"},
        )
    return int(value)


def _isoformat(value: Any) -> str:
    """Times in device states (a scanner's last reading) as RFC 3339, like `GET /v1/devices`."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def sse(event: LaneEvent, *, with_id: bool = True) -> bytes:
    payload = json.dumps(
        event.to_dict(), ensure_ascii=False, separators=(",", ":"), default=_isoformat
    )
    event_id = f"id: {event.id}\n" if with_id else ""
    return f"{event_id}event: {event.type}\ndata: {payload}\n\n".encode()


@router.get(
    "/lanes/{lane_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def lane_events(
    lane_id: str,
    request: Request,
    hub: HubDep,
    _: TillScope,
    last_event_id: str | None = Header(default=None),
) -> StreamingResponse:
    """Identifications, print results and device faults at one lane, as they happen.

    Every stream starts with a `lane_state` event (the customer at the lane, the lane's devices;
    it carries no `id:`, so it never moves `Last-Event-ID`). A follower that reconnects with
    `Last-Event-ID` then receives what it missed (the lane keeps its last 100 events). The stream
    ends when the service stops.
    """
    if not hub.has_lane(lane_id):
        raise NotFound(f"no lane {lane_id!r} in this store's configuration", code="lane_not_found")
    after = parse_last_event_id(last_event_id)

    async def stream() -> AsyncIterator[bytes]:
        # The subscription is made here, where the `finally` that ends it is sure to run: a
        # request refused before streaming, or a follower gone before the first byte, leaves none.
        subscription = hub.subscribe(lane_id)
        try:
            missed = hub.history(lane_id, after_id=after) if after is not None else []
            yield b": connected\n\n"
            yield sse(await asyncio.to_thread(hub.lane_state, lane_id), with_id=False)
            last_sent = 0
            for event in missed:
                last_sent = event.id
                yield sse(event)
            while not await request.is_disconnected():
                try:
                    latest = await asyncio.wait_for(subscription.queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if latest is None:  # the service is stopping; the follower reconnects later
                    return
                if latest.id > last_sent:
                    yield sse(latest)
        finally:
            hub.unsubscribe(subscription)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/devices")
def devices(hub: HubDep, _: TillScope) -> dict[str, Any]:
    """Each device's state: connected, fps, last error, queue length."""
    return {"devices": hub.devices()}
