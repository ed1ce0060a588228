"""Administration: database migrations, API keys, enrolling a customer by hand."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key, list_keys, revoke_key
from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
)
from pos_loyalty.customers.referrals import referral_code_for
from pos_loyalty.customers.service import enrol_customer, loyalty_qr
from pos_loyalty.errors import DomainError, NotFound
from pos_loyalty.storage.migrate import current_revision, head_revision

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys for tills, head office and administrators.", no_args_is_help=True
)
customers_app = typer.Typer(help="Customers.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Migrate the database to the newest schema (safe to repeat)."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings, migrate=True)
    current, head = current_revision(store.engine), head_revision(store.engine)
    console.print(f"database at revision [bold]{current}[/] (head {head})")
    store.close()


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="till, hq or admin")],
    label: Annotated[str, typer.Option(help="Who the key is for, e.g. 'lane-1 till'.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create an API key; the key is printed once, as the last line, and only its hash is kept."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    with store.uow(write=True) as uow:
        token = create_key(uow=uow, scope=scope, label=label)
    store.close()
    err_console.print(f"created a {scope.value} key; store it now, it cannot be shown again:")
    typer.echo(token)


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """The API keys: id, scope, label, when created and revoked (never the tokens)."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    with store.uow() as uow:
        keys = list_keys(uow=uow)
    store.close()
    table = Table(title="API keys")
    for column in ("id", "scope", "label", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
        table.add_row(
            str(key.id), key.scope, key.label, key.created_at.isoformat(timespec="seconds"), revoked
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id, as `keys list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Refuse a key from now on (a lost till, a replaced integration): its requests get 401."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    try:
        with store.uow(write=True) as uow:
            key = revoke_key(uow=uow, key_id=key_id, now=store.now())
    except NotFound as exc:
        err_console.print(f"{exc.code}: {exc.message}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    assert key.revoked_at is not None
    console.print(
        f"key {key.id} ({key.scope}{', ' + key.label if key.label else ''}) revoked at "
        f"{key.revoked_at.isoformat(timespec='seconds')}"
    )
    # The server keeps a key it checked for `key_cache_s`; a revocation made in its own process
    # (not this one) is seen at once.
    console.print(
        f"a server running on this database refuses it within {settings.api.key_cache_s:g} s "
        "([api] key_cache_s in the server's config)"
    )


@customers_app.command("enrol")
def customers_enrol(
    phone: Annotated[str, typer.Option(help="Phone number in any usual spelling.")],
    name: Annotated[str, typer.Option(help="Customer's name.")],
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    card: Annotated[
        str | None, typer.Option(help="An existing card number (Luhn-checked).")
    ] = None,
    referred_by: Annotated[
        str | None, typer.Option(help="The referral code of the customer who brought them.")
    ] = None,
    email: Annotated[
        str | None, typer.Option(help="E-mail address (outreach uses it with consent 'email').")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Enrol a customer and print their card number, loyalty QR payload and referral code."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    try:
        born = date.fromisoformat(birthday) if birthday else None
    except ValueError:
        err_console.print(f"--birthday: expected YYYY-MM-DD, got {birthday!r}")
        raise typer.Exit(2) from None
    try:
        with store.uow(write=True) as uow:
            profile = enrol_customer(
                uow=uow,
                settings=settings,
                secret=store.secret,
                phone=phone,
                name=name,
                birthday=born,
                card_number=card,
                referred_by=referred_by,
                email=email,
            )
            referral_code = referral_code_for(uow=uow, customer_id=profile.id)
    except DomainError as exc:
        err_console.print(f"[red]{exc.code}[/]: {escape(exc.message)}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"enrolled {profile.name} id={profile.id}", markup=False)
    console.print(f"card {profile.card_numbers[0]}  phone {profile.phone}", markup=False)
    if profile.email_masked:
        console.print(f"e-mail {profile.email_masked}", markup=False)
    console.print(
        f"qr {loyalty_qr(secret=store.secret, customer_id=profile.id, now=store.now())}",
        markup=False,
    )
    console.print(f"referral code {referral_code}", markup=False)
    store.close()
