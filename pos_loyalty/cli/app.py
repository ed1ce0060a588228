"""Assembles the command groups into the `pos-loyalty` app.

Each group lives in its own module; the adapters (`api`, `drivers`, `firmware_sim`) are imported
lazily inside the commands that need them, so the core never imports them at module level.
"""

import typer

app = typer.Typer(
    name="pos-loyalty",
    help="In-store loyalty engine: identify customers, price baskets, keep points, print receipts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
