"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from api.deps import KeyCache
from api.errors import install_error_handlers
from api.metrics import Metrics, MetricsMiddleware
from api.routers import customers, health
from pos_loyalty import __version__
from pos_loyalty.settings import Settings
from pos_loyalty.store import Store


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """Build the app for one store; the schema must already be migrated (`db upgrade`)."""
    store = store or Store.open(settings)
    app = FastAPI(
        title="pos-loyalty",
        version=__version__,
        description="Loyalty engine for the store's tills: identify, evaluate, commit, print.",
    )
    metrics = Metrics()
    app.state.store = store
    app.state.metrics = metrics
    app.state.key_cache = KeyCache()
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(health.router)
    app.include_router(customers.router)
    return app
