"""What every command shares: the --config option and turning start-up errors into messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from pos_loyalty.rules.config import RulesConfigError
from pos_loyalty.security import SecretFileError
from pos_loyalty.settings import ConfigError, Settings, load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.storage.space import OPEN_ROOM_BYTES
from pos_loyalty.store import Store

if TYPE_CHECKING:
    from pos_loyalty.hq.bundle import Program

console = Console()
# Errors are never wrapped: a path or key split over two lines cannot be searched or copied.
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The store's config.toml (default: $POS_LOYALTY_CONFIG, then ./config.toml).",
    ),
]


def load_or_exit(config: Path | None) -> Settings:
    """Validated settings, or the problems on stderr and exit code 2."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        err_console.print(f"[bold red]Configuration error[/] in {exc.source}:", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  • {problem}", highlight=False, markup=False)
        raise typer.Exit(2) from None


def open_store_or_exit(settings: Settings, *, migrate: bool = True) -> Store:
    """The opened (and migrated) store, or why not on stderr and exit code 2 — no traceback."""
    shown_url = escape(make_url(settings.database_url).render_as_string(hide_password=True))
    try:
        store = Store.open(settings)
    except SecretFileError as exc:
        err_console.print(f"[bold red]Store secret error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except OSError as exc:  # the SQLite file's folder cannot be created
        err_console.print(
            f"[bold red]Database error:[/] cannot create {shown_url} ({exc.strerror}); "
            f"check store.database_url in {settings.source}",
            highlight=False,
        )
        raise typer.Exit(2) from None
    if migrate:
        try:
            upgrade(store.engine)
        except OperationalError as exc:
            free = store.space.free_bytes()
            store.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            advice = (
                f"the disk holding it is full ({free // 1024} KiB free): free some space there"
                if free is not None and free < OPEN_ROOM_BYTES
                else f"check store.database_url in {settings.source} (or POS_LOYALTY_DATABASE_URL)"
            )
            err_console.print(
                f"[bold red]Database error:[/] cannot open {shown_url}: {escape(reason)}; {advice}",
                highlight=False,
            )
            raise typer.Exit(2) from None
    return store


def rules_problems_exit(exc: RulesConfigError) -> typer.Exit:
    """Print an invalid program's problems (as `rules validate` words them); raise the result."""
    err_console.print(f"[bold red]Invalid rules[/] in {exc.source}:", highlight=False)
    for problem in exc.problems:
        err_console.print(f"  • {problem}", highlight=False, markup=False)
    return typer.Exit(1)


def program_or_exit(path: Path) -> Program:
    """A program TOML checked as `rules validate` checks it, or its problems and exit code 1."""
    from pos_loyalty.hq.publish import load_program_file

    try:
        return load_program_file(path)
    except RulesConfigError as exc:
        raise rules_problems_exit(exc) from None
