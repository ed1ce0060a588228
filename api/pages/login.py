"""`/login` and `/logout`: a key typed once, kept in an HttpOnly SameSite=Strict cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from api.deps import KeyCache
from api.pages.render import render
from api.pages.session import (
    checked_form,
    clear_key_cookie,
    safe_next,
    set_key_cookie,
)
from pos_loyalty.store import Store

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> RedirectResponse:
    store: Store = request.app.state.store
    return RedirectResponse(
        "/hq" if store.settings.head_office is not None else "/store", status_code=303
    )


@router.get("/login")
def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key as the API would; a good one goes into the cookie, a bad one is named."""
    fields = await checked_form(request)
    next_path = safe_next(fields.get("next"))
    token = fields.get("key", "").strip()
    store: Store = request.app.state.store
    cache: KeyCache = request.app.state.key_cache
    if not token or len(token) > 200 or cache.scope(store, token) is None:
        return render(
            request,
            "login.html",
            {"next": next_path, "error": "login.bad_key"},
            status_code=401,
        )
    response = RedirectResponse(next_path, status_code=303)
    set_key_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    response = RedirectResponse("/login", status_code=303)
    clear_key_cookie(response)
    return response
