"""`serve`: the API (and, with the drivers, the lane devices) for one store."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from pos_loyalty.cli.common import ConfigOption, console, load_or_exit, open_store_or_exit


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default from config).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Run the HTTP API for the tills; migrates the database first."""
    import uvicorn

    from api.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_or_exit(config)
    store = open_store_or_exit(settings, migrate=True)
    app = create_app(settings, store=store)
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    console.print(
        f"pos-loyalty for store [bold]{settings.store.id}[/] on http://{bind_host}:{bind_port}"
    )
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)
