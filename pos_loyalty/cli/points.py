"""`points expire` and `ledger verify`: the ledger's housekeeping and its proof of consistency."""

from __future__ import annotations

import typer

from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
)
from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.sales.housekeeping import run_housekeeping

points_app = typer.Typer(help="Loyalty points.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)


@points_app.command("expire")
def points_expire(config: ConfigOption = None) -> None:
    """Post expiry entries for lots past their date (and expire old coupons); safe to repeat."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    try:
        report = run_housekeeping(store)
    finally:
        store.close()
    console.print(
        f"expired {report.points_expired} points in {report.lots_expired} lots "
        f"of {report.customers} customers; {report.coupons_expired} coupons expired"
    )


@ledger_app.command("verify")
def ledger_verify(config: ConfigOption = None) -> None:
    """Prove that every customer's cached balance equals the sum of their ledger entries and
    that no entry is reversed by more than it was worth; exit 1 if not."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    try:
        with store.uow() as uow:
            checked, problems = verify_ledger(uow=uow)
    finally:
        store.close()
    for problem in problems:
        err_console.print(
            f"customer {problem.customer_id}: {problem.problem}", highlight=False, soft_wrap=True
        )
    if problems:
        err_console.print(f"[bold red]{len(problems)} problem(s)[/] in {checked} customers")
        raise typer.Exit(1)
    console.print(f"ledger OK: {checked} customers, every cached balance equals its entries")
