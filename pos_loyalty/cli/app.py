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

from pos_loyalty.cli.admin import customers_app, db_app, keys_app  # noqa: E402
from pos_loyalty.cli.care import audit_app  # noqa: E402
from pos_loyalty.cli.coupons import coupons_app  # noqa: E402
from pos_loyalty.cli.demo import demo  # noqa: E402
from pos_loyalty.cli.hq import hq_app  # noqa: E402
from pos_loyalty.cli.points import ledger_app, points_app  # noqa: E402
from pos_loyalty.cli.rules import rules_app  # noqa: E402
from pos_loyalty.cli.segments import segments_app  # noqa: E402
from pos_loyalty.cli.serve import serve  # noqa: E402
from pos_loyalty.cli.sim import sim_app  # noqa: E402

app.command()(serve)
app.command()(demo)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(customers_app, name="customers")
app.add_typer(points_app, name="points")
app.add_typer(ledger_app, name="ledger")
app.add_typer(rules_app, name="rules")
app.add_typer(sim_app, name="sim")
app.add_typer(segments_app, name="segments")
app.add_typer(hq_app, name="hq")
app.add_typer(audit_app, name="audit")
app.add_typer(coupons_app, name="coupons")
