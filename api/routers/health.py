"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import HubDep, MetricsDep, StoreDep
from api.errors import error_response
from pos_loyalty.readiness import NOT_READY, check_readiness

router = APIRouter(tags=["health"])

READY_RETRY_AFTER_S = "5"


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Whether it can take a sale is /readyz."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "not ready: the database cannot write or its disk is below the floor",
        }
    },
)
async def readyz(store: StoreDep, hub: HubDep) -> Any:
    """Readiness: a real write to the database, free disk space, the print queue and devices.

    200 `ready` or `degraded` (a stuck print queue or a device down: sales still work); 503
    `not_ready` in the error shape with the reason and every check in `details`.
    """
    devices = await run_in_threadpool(hub.devices)
    readiness = await run_in_threadpool(lambda: check_readiness(store=store, devices=devices))
    if readiness.status == NOT_READY:
        return error_response(
            503,
            "not_ready",
            readiness.reason,
            readiness.to_dict(),
            {"Retry-After": READY_RETRY_AFTER_S},
        )
    return readiness.to_dict()


@router.get("/metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
