"""Refuse new work while the database's disk is below its free-space floor (503 `disk_low`).

Checked before the body is read, for every request that may write (anything but GET/HEAD/OPTIONS
under /v1/): the till hears why and when to retry instead of a write failing half way. Reads keep
working, and so does service as soon as space returns (`pos_loyalty.storage.space`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response
from pos_loyalty.store import Store

DISK_LOW_RETRY_AFTER_S = "30"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class DiskSpaceMiddleware:
    def __init__(self, app: ASGIApp, *, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in READ_METHODS
            and scope["path"].startswith("/v1/")
        ):
            reason = self.store.space.refusal()  # a statvfs call; any checkpoint runs aside
            if reason is not None:
                response = error_response(
                    503, "disk_low", reason, None, {"Retry-After": DISK_LOW_RETRY_AFTER_S}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
