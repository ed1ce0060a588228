"""Rendering a page: Jinja2 with autoescape, the store's words, the form token, strict headers.

Everything from outside (customer names, rule labels, basket lines, device errors) reaches a page
only through `{{ … }}`, which escapes it; no template marks outside text `|safe`. The pages' own
script is a static file, so the Content-Security-Policy allows no inline script at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from api.pages.session import CSRF_FIELD, csrf_token, set_csrf_cookie
from api.pages.words import Words
from pos_loyalty.store import Store

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# autoescape=True for every template (select_autoescape would leave a `.txt` or a string unescaped)
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, auto_reload=False
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def words_for(request: Request) -> Words:
    store: Store = request.app.state.store
    settings = store.settings.store
    return Words(locale=settings.locale, currency=settings.currency, tz=settings.tz)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """A page or fragment in the store's language, with the CSRF token its forms need."""
    store: Store = request.app.state.store
    values = {
        "w": words_for(request),
        "store_name": store.settings.store.name,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    set_csrf_cookie(request, response)
    return response
