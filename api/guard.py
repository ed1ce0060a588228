"""What is refused before a route runs or a byte of the body is read.

Pure ASGI, so a refusal costs no body read and no task:
- `/v1/…` needs a valid API key: without one the answer is 401 before the body is read, so a
  500 MB POST from anyone costs nothing (the server hangs up without reading it);
- a body must be `application/json` in UTF-8 (else 422 naming the body, as for a body that is not
  JSON), and at most the route's cap (413):
  a declared Content-Length over the cap is refused at once, a chunked body as soon as the bytes
  received pass it, without holding more than the cap in memory;
- the API's own documentation and metrics (`/docs`, `/redoc`, `/openapi.json`, `/metrics`) are
  served as `[api] open_docs` says: to this machine only, to any valid key, or to anyone.
"""

from __future__ import annotations

import codecs
import ipaddress
from typing import Any

from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import BAD_KEY, NO_KEY, KeyCache, bearer_token
from api.errors import BodyRefused, database_unavailable, error_response
from pos_loyalty.security import hash_api_key
from pos_loyalty.settings import ApiConfig
from pos_loyalty.store import Store

DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/metrics"})
# Routes whose body is a basket (up to 1000 lines): `[api] max_basket_body_bytes`.
BASKET_PATHS = ("/v1/baskets/evaluate", "/v1/transactions")
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}
NOT_JSON = "the body must be JSON sent as Content-Type: application/json (UTF-8)"
NOT_UTF8 = "the body must be JSON encoded as UTF-8 (not UTF-16, not a legacy code page)"


def _too_large(cap: int) -> tuple[int, str, str, Any]:
    message = f"the body is larger than this route accepts ({cap} bytes)"
    return 413, "payload_too_large", message, {"max_bytes": cap}


def _not_json(message: str) -> tuple[int, str, str, Any]:
    """Shaped like FastAPI's own refusal of a body that is not JSON: 422 naming `body`."""
    problem = {"field": "body", "message": message, "type": "content_type"}
    return 422, "validation_error", f"body: {message}", [problem]


def is_loopback(client: Any) -> bool:
    """True if the connection's peer is this machine (127.0.0.0/8, ::1, IPv4-mapped loopback).
    A name (the test client's "testclient") or no peer at all is not."""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_json_utf8(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in {"utf-8", "utf8"}:
            return False
    return True


class RequestGuard:
    def __init__(self, app: ASGIApp, *, config: ApiConfig, key_cache: KeyCache, store: Store):
        self.app = app
        self.config = config
        self.key_cache = key_cache
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in DOC_PATHS:
            refusal = self._docs_refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        elif path.startswith("/v1/"):
            refusal = self._key_refusal(scope) or self._body_refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            receive = self._checked_body(scope, receive)
        await self.app(scope, receive, send)

    # -- who may ask -----------------------------------------------------------------------

    def _docs_refusal(self, scope: Scope) -> Any:
        mode = self.config.open_docs
        if mode == "open" or (mode == "loopback" and is_loopback(scope.get("client"))):
            return None
        if mode == "key":
            return self._key_refusal(scope)
        return error_response(
            403,
            "forbidden",
            f'{scope["path"]} is served only to this machine ([api] open_docs = "loopback")',
        )

    def _key_refusal(self, scope: Scope) -> Any:
        """None if the request carries a valid key (its scope is kept for the route), else 401."""
        token = bearer_token(_header(scope, b"authorization") or "")
        if token is None:
            return error_response(401, "unauthorized", NO_KEY, None, UNAUTHORIZED_HEADERS)
        try:
            key_scope = self.key_cache.scope(self.store, token)
        except OperationalError as exc:  # outside the routes' handlers: answered here the same
            return database_unavailable(exc)
        if key_scope is None:
            return error_response(401, "unauthorized", BAD_KEY, None, UNAUTHORIZED_HEADERS)
        state = scope.setdefault("state", {})
        state["api_key_scope"], state["api_key_hash"] = key_scope, hash_api_key(token)
        return None

    # -- what may be sent ------------------------------------------------------------------

    def _cap(self, path: str) -> int:
        if path.startswith(BASKET_PATHS):
            return self.config.max_basket_body_bytes
        return self.config.max_body_bytes

    def _body_refusal(self, scope: Scope) -> Any:
        length = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        if length is None and not chunked:
            return None  # no body
        if length is not None:
            if not length.strip().isascii() or not length.strip().isdigit():
                return error_response(400, "bad_request", "Content-Length is not a number")
            if int(length) == 0:
                return None
        if not _is_json_utf8(_header(scope, b"content-type")):
            return error_response(*_not_json(NOT_JSON))
        cap = self._cap(scope["path"])
        if length is not None and int(length) > cap:
            return error_response(*_too_large(cap))
        return None

    def _checked_body(self, scope: Scope, receive: Receive) -> Receive:
        """`receive` that counts the body's bytes against the cap and checks they are UTF-8 as
        they arrive; the route's body read fails with 413 or 422 (the one error shape) past them."""
        cap = self._cap(scope["path"])
        decoder = codecs.getincrementaldecoder("utf-8")()
        received = 0

        async def checked() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > cap:
                raise BodyRefused(*_too_large(cap))
            # JSON in UTF-16 has NUL bytes between its ASCII characters; JSON never has a raw NUL.
            if b"\x00" in chunk:
                raise BodyRefused(*_not_json(NOT_UTF8))
            try:
                decoder.decode(chunk, final=not message.get("more_body", False))
            except UnicodeDecodeError:
                raise BodyRefused(*_not_json(NOT_UTF8)) from None
            return message

        return checked
