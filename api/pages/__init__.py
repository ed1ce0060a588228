"""Screens served by the service itself: server-rendered pages, every asset local.

`install_pages(app)` adds the sign-in form, the customer display at each lane (`display`), the
store's back office (`backoffice`), `/docs` and `/redoc`, the head office's console (`hq_*`: only
on a service with `[head_office]`, for keys of scope hq) and the static files.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from api.pages import backoffice, display, docs, hq_bundles, hq_forecast, hq_reports, login
from api.pages.render import STATIC_DIR, render
from api.pages.session import CsrfRefused, LoginRequired, login_url


def install_pages(app: FastAPI) -> None:
    """Mount the pages on the API's app (call after the API's own routers)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (login, docs, display, backoffice, hq_bundles, hq_forecast, hq_reports):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        if exc.wrong_scope:
            scopes = ", ".join(scope.value for scope in exc.wrong_scope)
            return render(
                request,
                "login.html",
                {"next": exc.next_path, "error": "login.wrong_scope", "scopes": scopes},
                status_code=403,
            )
        if request.headers.get("accept", "").startswith("text/event-stream") or (
            request.headers.get("x-pages-fetch") == "1"
        ):
            return Response(status_code=401)  # the page's script sends the person to sign in
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render(request, "refused.html", {"reason": str(exc)}, status_code=403)
