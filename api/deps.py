"""Dependencies shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from threading import Lock
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.metrics import Metrics
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import revocations_in_this_process, scope_of
from pos_loyalty.lanes import LaneHub
from pos_loyalty.security import hash_api_key
from pos_loyalty.store import Store

# The dependencies below are `async def` on purpose: they do no blocking I/O (the key cache
# queries only on a miss, once per key per `[api] key_cache_s`), and a sync dependency would cost
# a threadpool hop on every request.


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_hub(request: Request) -> LaneHub:
    hub: LaneHub = request.app.state.hub
    return hub


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


StoreDep = Annotated[Store, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HubDep = Annotated[LaneHub, Depends(get_hub)]


class KeyCache:
    """Each key's scope (or None: unknown or revoked) for `ttl_s` seconds, so a valid key costs no
    query per request. A key revoked in another process (`pos-loyalty keys revoke`) is refused
    within `ttl_s`; one revoked in this process at once (the cache sees the revocation count move).
    """

    def __init__(self, ttl_s: float = 2.0) -> None:
        self.ttl_s = ttl_s
        self._lock = Lock()
        self._entries: dict[str, tuple[Scope | None, float, int]] = {}

    def scope(self, store: Store, token: str) -> Scope | None:
        digest = hash_api_key(token)
        now = time.monotonic()
        revocations = revocations_in_this_process()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now and hit[2] == revocations:
            return hit[0]
        with store.uow() as uow:
            scope = scope_of(uow=uow, token=token)
        if self.ttl_s > 0:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[digest] = (scope, now + self.ttl_s, revocations)
        return scope


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


NO_KEY = "an API key is required: Authorization: Bearer <key>"
BAD_KEY = "the API key is not valid or was revoked"


def authenticate(request: Request) -> Scope:
    """The scope of the request's key (the request guard may have checked it already, before
    the body was read), or a 401."""
    checked = getattr(request.state, "api_key_scope", None)
    if isinstance(checked, Scope):
        return checked
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise ApiError(401, "unauthorized", NO_KEY, headers={"WWW-Authenticate": "Bearer"})
    cache: KeyCache = request.app.state.key_cache
    scope = cache.scope(request.app.state.store, token)
    if scope is None:
        raise ApiError(401, "unauthorized", BAD_KEY, headers={"WWW-Authenticate": "Bearer"})
    return scope


def require_scope(*allowed: Scope) -> Callable[..., Awaitable[Scope]]:
    """A dependency that admits a bearer key of one of `allowed` scopes (admin always)."""
    permitted = {*allowed, Scope.ADMIN}

    async def check(request: Request) -> Scope:
        scope = authenticate(request)
        if scope not in permitted:
            raise ApiError(
                403,
                "forbidden",
                f"this needs a key of scope {' or '.join(sorted(s.value for s in allowed))}; "
                f"this key has scope {scope.value}",
            )
        return scope

    return check


TillScope = Annotated[Scope, Depends(require_scope(Scope.TILL))]
HqScope = Annotated[Scope, Depends(require_scope(Scope.HQ))]
AdminScope = Annotated[Scope, Depends(require_scope(Scope.ADMIN))]


_till = require_scope(Scope.TILL)


async def till_store(request: Request) -> Store:
    """The store, for a till (or admin) key: the till's hot routes take this one dependency
    instead of two (FastAPI's resolution of each is a measurable part of an evaluate)."""
    await _till(request)
    return await get_store(request)


TillStore = Annotated[Store, Depends(till_store)]
