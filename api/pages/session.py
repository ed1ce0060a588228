"""Signing in to the pages with an API key, and CSRF protection for their forms.

The key a person types is kept in an HttpOnly, SameSite=Strict cookie (page scripts cannot read
it, other sites cannot send it) and checked exactly as a bearer key is (`KeyCache`), so revoking a
key signs its pages out too. Every form carries a double-submit token: a random value in a cookie
of its own, echoed in a hidden field; a POST whose field does not match, or whose Origin is another
site's, is refused before anything is done.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, quote

from fastapi import Request
from starlette.responses import Response

from api.deps import KeyCache
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.store import Store

KEY_COOKIE = "pos_loyalty_key"
CSRF_COOKIE = "pos_loyalty_csrf"
CSRF_FIELD = "csrf_token"
FORM_MAX_BYTES = 16 * 1024


class LoginRequired(Exception):
    """No valid key in the cookie: the page sends the person to the sign-in form."""

    def __init__(self, next_path: str, *, wrong_scope: tuple[Scope, ...] = ()) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.wrong_scope = wrong_scope


class CsrfRefused(Exception):
    """A form post without the page's token (or from another origin): nothing is done."""


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/store"
    return path


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def page_scope(*allowed: Scope) -> Callable[[Request], Awaitable[Scope]]:
    """A dependency admitting a signed-in key of one of `allowed` scopes (admin always)."""
    permitted = {*allowed, Scope.ADMIN}

    async def check(request: Request) -> Scope:
        next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        token = request.cookies.get(KEY_COOKIE, "").strip()
        if not token:
            raise LoginRequired(next_path)
        store: Store = request.app.state.store
        cache: KeyCache = request.app.state.key_cache
        scope = cache.scope(store, token)
        if scope is None:
            raise LoginRequired(next_path)
        if scope not in permitted:
            raise LoginRequired(next_path, wrong_scope=tuple(sorted(allowed)))
        return scope

    return check


def csrf_token(request: Request) -> str:
    """The token the page's forms carry: the browser's cookie, or a new one (set by `render`)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_csrf_cookie(request: Request, response: Response) -> None:
    """A token minted while rendering this page goes to the browser with it."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/"
        )


def set_key_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        KEY_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


def clear_key_cookie(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")


async def checked_form(request: Request, *, max_bytes: int = FORM_MAX_BYTES) -> dict[str, str]:
    """The posted form's fields, after the CSRF checks; raises `CsrfRefused` otherwise.
    `max_bytes` is larger for a form that carries a document (head office's program upload)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin != expected:
            raise CsrfRefused(f"origin {origin!r} is not {expected!r}")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise CsrfRefused("not a form post")
    body = await request.body()
    if len(body) > max_bytes:
        raise CsrfRefused("form too large")
    fields = {
        key: values[-1]
        for key, values in parse_qs(
            body.decode("utf-8", errors="replace"), keep_blank_values=True
        ).items()
    }
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.pop(CSRF_FIELD, "")
    if len(cookie) < 32 or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused("the form's token does not match the browser's")
    return fields
