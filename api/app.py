"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import KeyCache
from api.errors import install_error_handlers
from api.guard import RequestGuard
from api.identify_limits import IdentifyFailureLimiter
from api.metrics import Metrics, MetricsMiddleware
from api.openapi import install_openapi
from api.pages import install_pages
from api.routers import (
    admin,
    baskets,
    campaigns,
    coupons,
    customers,
    health,
    hq,
    lanes,
    receipts,
    referrals,
    segments,
    transactions,
)
from api.space import DiskSpaceMiddleware
from api.till_path import TillFastPath
from pos_loyalty import __version__
from pos_loyalty.lanes import (
    CUSTOMER_IDENTIFIED,
    CUSTOMER_UNKNOWN,
    TOKEN_INVALID,
    LaneEvent,
    LaneHub,
)
from pos_loyalty.receipts.preview import ReceiptPngRenderer
from pos_loyalty.sales.quotes import QuoteWriter
from pos_loyalty.sales.sale_writer import SaleWriter
from pos_loyalty.settings import Settings
from pos_loyalty.storage.engine import is_sqlite
from pos_loyalty.store import Store


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    hub: LaneHub | None = None,
    receipt_png: ReceiptPngRenderer | None = None,
) -> FastAPI:
    """Build the app for one store; the schema must already be migrated (`db upgrade`).

    `hub` is the lanes' event hub shared with the device manager (`serve` builds both).
    `receipt_png` draws receipt previews (`pos_loyalty.cli.receipt_preview.render_receipt_png`);
    without it `GET /v1/receipts/{id}.png` answers 501.
    """
    store = store or Store.open(settings)
    hub = hub or LaneHub(store)
    quote_writer = QuoteWriter(store)
    # SQLite writes one transaction at a time: sales share one (see sales/sale_writer.py).
    sale_writer = SaleWriter(store) if is_sqlite(store.engine) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # What is queued is stored before the server lets go.
            if sale_writer is not None:
                sale_writer.close()
            quote_writer.close()

    app = FastAPI(
        title="pos-loyalty",
        version=__version__,
        description="Loyalty engine for the store's tills: identify, evaluate, commit, print.",
        lifespan=lifespan,
        docs_url=None,  # served by api.pages from local files: a store has no internet
        redoc_url=None,
    )
    metrics = Metrics()
    metrics.watch(store=store, hub=hub)
    app.state.store = store
    app.state.metrics = metrics
    key_cache = KeyCache(settings.api.key_cache_s)
    app.state.key_cache = key_cache
    app.state.identify_limiter = IdentifyFailureLimiter(settings.identity)
    app.state.quote_writer = quote_writer
    app.state.sale_writer = sale_writer
    app.state.hub = hub
    app.state.receipt_png = receipt_png
    hub.add_listener(lambda event: _count_reader_identification(metrics, event))
    install_error_handlers(app)
    # Innermost: the till's two calls per basket skip FastAPI's routing (api/till_path.py).
    app.add_middleware(TillFastPath, api=app)
    app.add_middleware(DiskSpaceMiddleware, store=store)
    # Keys, body sizes and content types are checked before a route reads a byte of the body;
    # the metrics middleware, added last, is outside it and counts the refusals too.
    app.add_middleware(RequestGuard, config=settings.api, key_cache=key_cache, store=store)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_openapi(app)
    # Routes are matched in this order: the till's two calls per basket come first.
    app.include_router(baskets.router)
    app.include_router(transactions.router)
    app.include_router(health.router)
    app.include_router(customers.router)
    app.include_router(lanes.router)
    app.include_router(coupons.router)
    app.include_router(receipts.router)
    app.include_router(segments.router)
    app.include_router(hq.router)
    app.include_router(admin.router)
    app.include_router(campaigns.router)
    app.include_router(referrals.router)
    install_pages(app)
    return app


def _count_reader_identification(metrics: Metrics, event: LaneEvent) -> None:
    """Identifications made by a lane's camera or scanner count like those sent by a till."""
    if event.type not in {CUSTOMER_IDENTIFIED, CUSTOMER_UNKNOWN, TOKEN_INVALID}:
        return
    if event.data.get("source") == "till":
        return  # counted by the identify route itself
    outcome = "identified" if event.type == CUSTOMER_IDENTIFIED else event.data.get("code", "?")
    metrics.identifications.labels(event.data.get("method", "unknown"), outcome).inc()
