"""`pos-loyalty hq …`: head office publishes signed rule bundles and watches the fleet."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from pos_loyalty.cli.common import (
    ConfigOption,
    err_console,
    load_or_exit,
    open_store_or_exit,
    program_or_exit,
)
from pos_loyalty.errors import DomainError
from pos_loyalty.hq.bundle import Bundle, Targets
from pos_loyalty.hq.diff import diff_programs
from pos_loyalty.hq.fleet import fleet, register_store
from pos_loyalty.hq.local import printable
from pos_loyalty.hq.publish import publish_bundle, published_program, rollback_to
from pos_loyalty.hq.signing import (
    SigningKeyError,
    create_signing_key,
    load_signing_key,
    public_key_text,
)
from pos_loyalty.moments import local_moment
from pos_loyalty.settings import Settings
from pos_loyalty.store import Store

hq_app = typer.Typer(
    help="Head office: publish rule bundles to the stores, roll back, see the fleet.",
    no_args_is_help=True,
)
console = Console()
keys_app = typer.Typer(help="Head office's signing key.", no_args_is_help=True)
hq_app.add_typer(keys_app, name="keys")


def _key_path(settings: Settings) -> Path:
    office = settings.head_office
    if office is None:
        err_console.print(
            f"[bold red]Not head office:[/] {settings.source} has no [head_office] section",
            highlight=False,
        )
        raise typer.Exit(2)
    return settings.resolve_path(office.signing_key)


def _signing_key(settings: Settings) -> Ed25519PrivateKey:
    try:
        return load_signing_key(_key_path(settings))
    except SigningKeyError as exc:
        err_console.print(f"[bold red]Signing key:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _operator() -> str:
    """Who published from the command line, for the console's list of versions."""
    try:
        return f"cli: {getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


def _fail(exc: DomainError) -> typer.Exit:
    err_console.print(f"[bold red]{exc.code}:[/] {exc.message}", highlight=False, markup=False)
    return typer.Exit(1)


@hq_app.command("serve")
def hq_serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Run head office: the same service, publishing bundles and serving them to the stores."""
    from pos_loyalty.cli.serve import serve

    settings = load_or_exit(config)
    _signing_key(settings)  # refuse to start without a usable key, before taking requests
    serve(config=config, host=host, port=port, devices=False)


@keys_app.command("create")
def keys_create(config: ConfigOption = None) -> None:
    """Create the Ed25519 signing key (mode 0600); prints the public key stores pin."""
    path = _key_path(load_or_exit(config))
    try:
        key = create_signing_key(path)
    except SigningKeyError as exc:
        err_console.print(f"[bold red]Signing key:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    err_console.print(f"private key written to {path} (mode 0600); put this in each store's")
    err_console.print("config.toml as [hq] public_key:")
    console.print(public_key_text(key), highlight=False)


def _moment(text: str | None, settings: Settings) -> datetime | None:
    if text is None or text == "now":
        return None
    try:
        return local_moment(text, settings.store.tz)
    except ValueError:
        err_console.print(f"[bold red]--effective-from[/] {text!r} is not an ISO moment")
        raise typer.Exit(1) from None


def _split(values: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (values or "").split(",") if v.strip())


def _published(bundle: Bundle, what: str = "published") -> None:
    console.print(
        f"[bold green]{what} v{bundle.version}[/] for {bundle.targets.describe()}, "
        f"effective from {bundle.effective_from.isoformat(timespec='seconds')}"
        + (f" — {printable(bundle.note, 200)}" if bundle.note else ""),
        highlight=False,
    )


@hq_app.command("publish")
def publish(
    program_file: Annotated[Path, typer.Argument(help="Program TOML ([points], [[rules]] …).")],
    effective_from: Annotated[
        str | None, typer.Option(help="ISO moment (local time of [store] if no offset); now.")
    ] = None,
    stores: Annotated[str | None, typer.Option(help="Store ids, comma-separated.")] = None,
    regions: Annotated[str | None, typer.Option(help="Regions, comma-separated.")] = None,
    note: Annotated[str, typer.Option(help="Who and why.")] = "",
    config: ConfigOption = None,
) -> None:
    """Validate (as `rules validate`), sign and publish a program as the next version."""
    settings = load_or_exit(config)
    program = program_or_exit(program_file)
    key = _signing_key(settings)
    store = open_store_or_exit(settings)
    try:
        with store.uow(write=True) as uow:
            bundle = publish_bundle(
                uow=uow,
                key=key,
                program=program,
                now=store.now(),
                effective_from=_moment(effective_from, settings),
                targets=Targets(_split(stores), _split(regions)),
                note=note,
                published_by=_operator(),
            )
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    _published(bundle)


@hq_app.command("rollback")
def rollback(
    to: Annotated[int, typer.Option("--to", help="The version whose program comes back.")],
    note: Annotated[str, typer.Option(help="Who and why.")] = "",
    config: ConfigOption = None,
) -> None:
    """Republish version V's program as the next number (stores never go back a number)."""
    settings = load_or_exit(config)
    key = _signing_key(settings)
    store = open_store_or_exit(settings)
    try:
        with store.uow(write=True) as uow:
            bundle = rollback_to(
                uow=uow, key=key, version=to, now=store.now(), note=note, published_by=_operator()
            )
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    _published(bundle, f"rolled back to v{to}'s program as")


@hq_app.command("diff")
def diff(
    old: Annotated[int, typer.Argument(help="Version before.")],
    new: Annotated[int, typer.Argument(help="Version after.")],
    config: ConfigOption = None,
) -> None:
    """What changed between two published versions, rule by rule."""
    store = open_store_or_exit(load_or_exit(config))
    try:
        with store.uow() as uow:
            _, before = published_program(uow=uow, version=old)
            _, after = published_program(uow=uow, version=new)
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    console.print(f"v{old} → v{new}:", highlight=False)
    for line in diff_programs(before, after):
        console.print(f"  {printable(line)}", highlight=False, markup=False)


@hq_app.command("add-store")
def add_store(
    store_id: Annotated[str, typer.Argument(help="The store's [store] id.")],
    region: Annotated[str, typer.Option(help="Region, for targeting.")] = "",
    name: Annotated[str, typer.Option(help="Name shown in the fleet.")] = "",
    config: ConfigOption = None,
) -> None:
    """Register a store (or give it a new key); prints its `store` key as the last line."""
    store = open_store_or_exit(load_or_exit(config))
    try:
        with store.uow(write=True) as uow:
            token = register_store(uow=uow, store_id=store_id, name=name, region=region)
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    err_console.print(f"store {store_id} registered; put this in its [hq] api_key:")
    console.print(token, highlight=False)


def _fleet_table(store: Store) -> Table:
    with store.uow() as uow:
        rows = fleet(uow=uow)
    table = Table(title="Stores", title_justify="left")
    for column in ("store", "region", "active", "pending", "should run", "software", "last seen"):
        table.add_column(column)
    table.add_column("last error")
    for row in rows:
        table.add_row(
            row.store_id,
            row.region or "—",
            f"v{row.active_version}" if row.active_version else "—",
            f"v{row.pending_version}" if row.pending_version else "—",
            (f"v{row.target_version}" if row.target_version else "—")
            + (" [bold red]behind[/]" if row.behind else ""),
            printable(row.software_version, 20) or "—",
            row.last_seen_at.isoformat(timespec="seconds") if row.last_seen_at else "never",
            printable(row.last_error, 200).replace("[", r"\["),
        )
    return table


@hq_app.command("stores")
def stores(config: ConfigOption = None) -> None:
    """The fleet: which store runs what, who is behind, who failed and why, last seen."""
    store = open_store_or_exit(load_or_exit(config))
    try:
        console.print(_fleet_table(store))
    finally:
        store.close()
