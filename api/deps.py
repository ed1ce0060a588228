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
from pos_loyalty.apikeys.service import scope_of
from pos_loyalty.lanes import LaneHub
from pos_loyalty.security import hash_api_key
from pos_loyalty.store import Store

# A revoked key stops working within this many seconds; a valid one costs no query per request.
KEY_CACHE_TTL_S = 30.0


# The dependencies below are `async def` on purpose: they do no blocking I/O (the key cache
# queries only on a miss, once per key per TTL), and a sync dependency would cost a threadpool hop
# on every request.


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
    def __init__(self) -> None:
        self._lock = Lock()
        self._entries: dict[str, tuple[Scope | None, float]] = {}

    def scope(self, store: Store, token: str) -> Scope | None:
        digest = hash_api_key(token)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with store.uow() as uow:
            scope = scope_of(uow=uow, token=token)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (scope, now + KEY_CACHE_TTL_S)
        return scope


def require_scope(*allowed: Scope) -> Callable[..., Awaitable[Scope]]:
    """A dependency that admits a bearer key of one of `allowed` scopes (admin always)."""
    permitted = {*allowed, Scope.ADMIN}

    async def check(request: Request, store: StoreDep) -> Scope:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "unauthorized",
                "an API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        cache: KeyCache = request.app.state.key_cache
        scope = cache.scope(store, token.strip())
        if scope is None:
            raise ApiError(
                401,
                "unauthorized",
                "the API key is not valid or was revoked",
                headers={"WWW-Authenticate": "Bearer"},
            )
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
