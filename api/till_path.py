"""The till's two calls per basket, evaluate and commit, called without FastAPI's routing and
dependency resolution: with the middleware FastAPI adds around a route, they took ~0.3 ms of an
evaluate on this machine (of ~2.4 ms), more than reading the customer and storing the quote.

The routes stay FastAPI's: it documents them, and this calls the same route functions with the
parameters FastAPI would give them (the store for a till key, `explain`, `Idempotency-Key`).
A request this does not read exactly as FastAPI would (an `explain` that is not a plain boolean,
say) goes on to FastAPI, which answers it. Errors are answered by the app's own exception
handlers, as FastAPI's exception middleware does; an unexpected one goes on to the server-error
middleware, as it did.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import till_store
from api.routers import baskets, transactions

# How FastAPI (pydantic) reads a boolean query parameter.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})

Call = Callable[[Request], Awaitable[Response]]


def _flag(request: Request, name: str) -> bool | None:
    """The query parameter as FastAPI reads it (absent: False), or None if only FastAPI can say
    (a value that is not a boolean: its 422)."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    value = values[-1].lower()
    return True if value in _TRUE else False if value in _FALSE else None


async def _evaluate(request: Request) -> Response | None:
    explain = _flag(request, "explain")
    if explain is None:
        return None
    return await baskets.evaluate(request, await till_store(request), explain=explain)


async def _commit(request: Request) -> Response | None:
    key = request.headers.get("idempotency-key")
    return await transactions.commit(request, await till_store(request), idempotency_key=key)


_CALLS: dict[str, Callable[[Request], Awaitable[Response | None]]] = {
    "/v1/baskets/evaluate": _evaluate,
    "/v1/transactions": _commit,
}


class TillFastPath:
    """ASGI middleware, innermost: `POST` to the two paths above is answered here."""

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self.api = api  # whose exception handlers answer errors
        self._routes: dict[str, APIRoute] | None = None

    def _route(self, path: str) -> APIRoute:
        """FastAPI's route of `path`, which the metrics label requests by (its path template)."""
        if self._routes is None:
            self._routes = {
                r.path: r
                for r in (*baskets.router.routes, *transactions.router.routes)
                if isinstance(r, APIRoute) and r.path in _CALLS and "POST" in (r.methods or ())
            }
        return self._routes[path]

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's handler for `exc`, as Starlette's exception middleware picks it (the one for
        `Exception` belongs to the server-error middleware, outside)."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = self.api.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = _CALLS.get(scope["path"]) if scope["type"] == "http" else None
        if call is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route(scope["path"])
        request = Request(scope, receive)
        try:
            response = await call(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        if response is None:  # FastAPI answers what this cannot read as it would
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
