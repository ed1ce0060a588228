"""The operator's customer-care commands from the shell: edit, export, erase, merge a
customer, adjust points, read the audit log. Each is audited as the shell user."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, audit_page
from pos_loyalty.cli.admin import customers_app
from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
)
from pos_loyalty.cli.points import points_app
from pos_loyalty.customers.edit import CLEAR, CLEAR_EMAIL, ProfileChanges, edit_profile
from pos_loyalty.customers.erase import erase_customer
from pos_loyalty.customers.export import export_customer_data
from pos_loyalty.customers.merge import merge_customers
from pos_loyalty.errors import DomainError
from pos_loyalty.ledger.adjust import adjust_points_by_operator
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

T = TypeVar("T")

audit_app = typer.Typer(help="The audit log of operator actions.", no_args_is_help=True)

CustomerArg = Annotated[str, typer.Argument(help="The customer's id (32 hex digits).")]


def shell_operator() -> Operator:
    return Operator(key_id=None, name=f"shell:{getpass.getuser()}")


def refused(exc: DomainError) -> typer.Exit:
    err_console.print(f"[red]{exc.code}[/]: {exc.message}", highlight=False, markup=True)
    return typer.Exit(1)


def _parse_consents(items: list[str]) -> dict[str, bool] | None:
    """`sms=no email=yes` → {"sms": False, "email": True}."""
    if not items:
        return None
    out: dict[str, bool] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or value.lower() not in {"yes", "no", "true", "false", "1", "0"}:
            err_console.print(f"--consent: expected NAME=yes|no, got {item!r}")
            raise typer.Exit(2)
        out[name] = value.lower() in {"yes", "true", "1"}
    return out


def open_store(config: Path | None) -> Store:
    return open_store_or_exit(load_or_exit(config))


def in_store(config: Path | None, work: Callable[[Store, UnitOfWork], T]) -> T:
    """An operator's command: `work` in one write unit of the store's database, the store closed
    after; a refusal (unknown customer, erased account ...) exits 1 with its code and message."""
    store = open_store(config)
    try:
        with store.uow(write=True) as uow:
            return work(store, uow)
    except DomainError as exc:
        raise refused(exc) from None
    finally:
        store.close()


@customers_app.command("edit")
def customers_edit(
    customer_id: CustomerArg,
    name: Annotated[str | None, typer.Option(help="The corrected name.")] = None,
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD, or 'none' to remove.")] = None,
    email: Annotated[
        str | None, typer.Option(help="The e-mail address, or 'none' to remove.")
    ] = None,
    consent: Annotated[
        list[str] | None, typer.Option(help="NAME=yes|no, repeatable; 'no' withdraws at once.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Correct a profile or change consents at the customer's request."""
    born: date | None = None
    if birthday is not None:
        try:
            born = CLEAR if birthday.lower() == "none" else date.fromisoformat(birthday)
        except ValueError:
            err_console.print(f"--birthday: expected YYYY-MM-DD or none, got {birthday!r}")
            raise typer.Exit(2) from None
    if email is not None and email.strip().lower() == "none":
        email = CLEAR_EMAIL
    changes = ProfileChanges(
        name=name, birthday=born, email=email, consents=_parse_consents(consent or [])
    )
    profile = in_store(
        config,
        lambda store, uow: edit_profile(
            uow=uow, operator=shell_operator(), customer_id=customer_id, changes=changes
        ),
    )
    consents = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in profile.consents.items())
    console.print(f"{profile.id}: {profile.name}; consents: {consents or 'none'}", markup=False)


@customers_app.command("export")
def customers_export(
    customer_id: CustomerArg,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON here.")] = None,
    config: ConfigOption = None,
) -> None:
    """Everything stored about a customer, as JSON (to stdout unless --out)."""
    data = in_store(
        config,
        lambda store, uow: export_customer_data(
            uow=uow, operator=shell_operator(), customer_id=customer_id, now=store.now()
        ),
    )
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"wrote {out}")


@customers_app.command("erase")
def customers_erase(
    customer_id: CustomerArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    config: ConfigOption = None,
) -> None:
    """Erase a customer's personal data on request; sales and ledger stay, detached."""
    if not yes:
        err_console.print("erasure cannot be undone: add --yes to confirm")
        raise typer.Exit(2)
    done = in_store(
        config,
        lambda store, uow: erase_customer(
            uow=uow, operator=shell_operator(), customer_id=customer_id, now=store.now()
        ),
    )
    console.print(
        f"erased {customer_id}: {done['cards']} card(s) removed, "
        f"{done['coupons_cancelled']} coupon(s) cancelled, {done['sales_kept']} sale(s) kept"
    )


@customers_app.command("merge")
def customers_merge(
    customer_id: CustomerArg,
    into: Annotated[str, typer.Option(help="The id of the account that stays.")],
    config: ConfigOption = None,
) -> None:
    """Merge a second account of the same person into the one that stays."""
    profile = in_store(
        config,
        lambda store, uow: merge_customers(
            uow=uow,
            operator=shell_operator(),
            source_id=customer_id,
            target_id=into,
            now=store.now(),
        ),
    )
    console.print(
        f"merged {customer_id} into {profile.id}: balance {profile.points_balance}, "
        f"cards {', '.join(profile.card_numbers)}"
    )


@points_app.command("adjust")
def points_adjust(
    customer_id: CustomerArg,
    points: Annotated[int, typer.Option(help="Signed: +500 credits, -200 debits.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger and the audit log).")],
    config: ConfigOption = None,
) -> None:
    """Credit or debit points by hand, as a new ledger entry with the reason."""
    done = in_store(
        config,
        lambda store, uow: adjust_points_by_operator(
            uow=uow,
            operator=shell_operator(),
            customer_id=customer_id,
            points=points,
            reason=reason,
            now=store.now(),
            expire_days=store.rules.points.expire_days,
        ),
    )
    console.print(
        f"ledger entry {done.entry_id}: {done.points:+d} points; balance {done.balance}",
        markup=False,
    )


@audit_app.command("list")
def audit_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    action: Annotated[AuditAction | None, typer.Option(help="Only this action.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    config: ConfigOption = None,
) -> None:
    """Operator actions, newest first, one per line (tab-separated)."""
    store = open_store(config)
    try:
        with store.uow() as uow:
            rows, _ = audit_page(uow=uow, customer_id=customer, action=action, limit=limit)
            lines = [
                "\t".join(
                    (
                        str(row.id),
                        row.at.isoformat(timespec="seconds"),
                        row.action,
                        row.actor,
                        row.customer_id or "-",
                        json.dumps(row.details, ensure_ascii=False),
                    )
                )
                for row in rows
            ]
    finally:
        store.close()
    # One entry per line, tab-separated, never wrapped: greppable, and pasted whole.
    typer.echo("id\tat\taction\toperator\tcustomer\tdetails")
    for text in lines:
        typer.echo(text)
