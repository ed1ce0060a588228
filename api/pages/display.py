"""`/lanes/{id}/display`: the customer display, a 1024×600 screen facing the customer.

The page follows the lane's event stream (the same stream as `GET /v1/lanes/{id}/events`, signed
in by the page's cookie instead of a bearer header, since a browser's EventSource sends no
headers) and, on each event, fetches the screen again as HTML rendered here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from api.pages.lane_screen import lane_screen
from api.pages.render import render
from api.pages.session import page_scope
from api.routers.lanes import lane_events
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.errors import NotFound
from pos_loyalty.lanes import LaneHub
from pos_loyalty.store import Store

router = APIRouter(include_in_schema=False)
TillPage = Annotated[Scope, Depends(page_scope(Scope.TILL))]


def _hub(request: Request, lane_id: str) -> LaneHub:
    hub: LaneHub = request.app.state.hub
    if not hub.has_lane(lane_id):
        raise NotFound(f"no lane {lane_id!r} in this store's configuration", code="lane_not_found")
    return hub


def _screen(request: Request, lane_id: str, template: str) -> Response:
    hub = _hub(request, lane_id)
    store: Store = request.app.state.store
    screen = lane_screen(hub=hub, store=store, lane_id=lane_id, now=store.now())
    return render(request, template, {"screen": screen})


@router.get("/lanes/{lane_id}/display")
def display(lane_id: str, request: Request, _: TillPage) -> Response:
    return _screen(request, lane_id, "display.html")


@router.get("/lanes/{lane_id}/display/screen")
def display_screen(lane_id: str, request: Request, _: TillPage) -> Response:
    """The screen alone, fetched by the page after each lane event."""
    return _screen(request, lane_id, "display_screen.html")


@router.get("/lanes/{lane_id}/display/events")
async def display_events(
    lane_id: str,
    request: Request,
    scope: TillPage,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The lane's events for the page (EventSource reconnects with Last-Event-ID by itself)."""
    return await lane_events(lane_id, request, _hub(request, lane_id), scope, last_event_id)
