"""`pos-loyalty rules`: the group, and its file commands `validate|explain|diff` (check a rules
file, price a basket with every reason, compare two programs). These work on files only (no
database, no server), so head office and support can run them anywhere; the store's commands are
in `rules_sync` (sync, status, reload) and `rules_forecast` (dry-run, report).
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table

from pos_loyalty.cli.common import err_console, program_or_exit, rules_problems_exit
from pos_loyalty.cli.rules_forecast import dry_run_command, report_command
from pos_loyalty.cli.rules_sync import reload, status, sync
from pos_loyalty.moments import local_moment
from pos_loyalty.money import format_money, qty_to_json
from pos_loyalty.rules import RulesConfig, RulesConfigError, compile_rules, evaluate
from pos_loyalty.rules.config import DiscountRule, ReferralRule, load_rules_file
from pos_loyalty.rules.inputs import PresentedCoupon
from pos_loyalty.rules.payload import BasketIn, CouponIn, CustomerIn
from pos_loyalty.rules.quote import Quote
from pos_loyalty.settings import CONFIG_ENV, DEFAULT_CONFIG_PATH

rules_app = typer.Typer(
    help="Loyalty rules: validate, explain, sync from head office, status, reload.",
    no_args_is_help=True,
)
console = Console()

RulesFile = Annotated[Path, typer.Argument(help="TOML with [points], [[tiers]], [[rules]].")]


def _load_rules_or_exit(path: Path) -> RulesConfig:
    try:
        return load_rules_file(path)
    except RulesConfigError as exc:
        raise rules_problems_exit(exc) from None


@rules_app.command("validate")
def validate(file: RulesFile) -> None:
    """Check a rules file (a full config.toml is fine); errors name the rule id and the key."""
    config = _load_rules_or_exit(file)
    compiled = compile_rules(config)
    kinds: dict[str, int] = {}
    for rule in config.rules:
        kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
    by_kind = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"
    console.print(
        f"[bold green]OK[/] {file}: {len(config.rules)} rules ({by_kind}), "
        f"{len(config.tiers)} tiers, version {compiled.version}",
        highlight=False,
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        err_console.print(f"[bold red]{what}:[/] {path} not found", highlight=False)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        err_console.print(f"[bold red]{what}:[/] {path} is not valid JSON: {exc}", highlight=False)
    raise typer.Exit(1)


def _validated(model: Any, data: Any, path: Path, what: str) -> Any:
    try:
        return TypeAdapter(model).validate_json(json.dumps(data))
    except ValidationError as exc:
        err_console.print(f"[bold red]{what}[/] in {path}:", highlight=False)
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = str(err["msg"]).removeprefix("Value error, ")
            err_console.print(f"  • {key}: {message}", highlight=False, markup=False)
        raise typer.Exit(1) from None


def _store_table(path: Path) -> dict[str, Any]:
    """The `[store]` table of a full config.toml, if the rules file is one (for locale, tz), with
    `category_names` taken from `[store.category_names]` or a program file's `[category_names]`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    store = data.get("store", {})
    store = dict(store) if isinstance(store, dict) else {}
    names = store.get("category_names", data.get("category_names", {}))
    store["category_names"] = (
        {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}
    )
    return store


@rules_app.command("explain")
def explain(
    basket_file: Annotated[Path, typer.Argument(help="Basket JSON, as a till posts it.")],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "-r",
            help="Rules TOML or config.toml (default: $POS_LOYALTY_CONFIG, then ./config.toml).",
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate at this ISO time (default: now).")
    ] = None,
    customer_json: Annotated[
        Path | None, typer.Option("--customer-json", help="Customer snapshot JSON.")
    ] = None,
    coupons_json: Annotated[
        Path | None, typer.Option("--coupons-json", help="JSON list of coupon snapshots.")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--tz", help="Store time zone (default: [store] or Moscow).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the quote as JSON.")] = False,
) -> None:
    """Price a basket and say, for every rule, what it did or why it did not apply."""
    if rules is None:  # the store's own program, found as every other command finds it
        rules = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    config = _load_rules_or_exit(rules)
    store = _store_table(rules)
    locale = str(store.get("locale", "ru_RU"))
    currency = str(store.get("currency", "RUB"))
    try:
        tz = ZoneInfo(timezone or str(store.get("timezone", "Europe/Moscow")))
    except (ZoneInfoNotFoundError, ValueError):
        err_console.print(f"[bold red]Unknown time zone[/] {timezone!r}", highlight=False)
        raise typer.Exit(1) from None
    if at is None:
        now = datetime.now(tz)
    else:
        try:
            now = local_moment(at, tz)
        except ValueError:
            err_console.print(f"[bold red]--at[/] {at!r} is not an ISO time", highlight=False)
            raise typer.Exit(1) from None
    basket_in: BasketIn = _validated(
        BasketIn, _read_json(basket_file, "Basket"), basket_file, "Invalid basket"
    )
    customer = None
    if customer_json is not None:
        customer_in: CustomerIn = _validated(
            CustomerIn, _read_json(customer_json, "Customer"), customer_json, "Invalid customer"
        )
        customer = customer_in.to_snapshot()
    known: dict[str, CouponIn] = {}
    if coupons_json is not None:
        coupon_list: list[CouponIn] = _validated(
            list[CouponIn], _read_json(coupons_json, "Coupons"), coupons_json, "Invalid coupons"
        )
        known = {c.code: c for c in coupon_list}
    presented = [
        known[code].to_presented() if code in known else PresentedCoupon(code, None, "unknown")
        for code in basket_in.coupons
    ]
    compiled = compile_rules(config, tz=tz, category_names=store.get("category_names"))
    quote = evaluate(
        basket_in.to_basket(),
        customer,
        compiled,
        now,
        coupons=presented,
        explain=True,
        locale=locale,
        currency=currency,
    )
    if as_json:
        console.print_json(json.dumps(quote.to_dict(), ensure_ascii=False))
        return
    _print_quote(quote, config, locale, currency)


def _print_quote(quote: Quote, config: RulesConfig, locale: str, currency: str) -> None:
    def money(amount: int) -> str:
        return format_money(amount, currency, locale)

    console.print(
        f"Rules version [bold]{quote.rules_version}[/], at {quote.evaluated_at.isoformat()}, "
        f"customer {quote.customer_id or '—'}",
        highlight=False,
    )
    lines = Table(title="Lines", title_justify="left")
    for column in ("sku", "name", "qty", "price", "subtotal", "discount", "points", "total"):
        lines.add_column(column, justify="right" if column not in ("sku", "name") else "left")
    lines.add_column("rules")
    for line in quote.lines:
        lines.add_row(
            line.sku,
            line.name,
            str(qty_to_json(line.qty)),
            money(line.unit_price),
            money(line.subtotal),
            money(line.discount),
            money(line.burn),
            money(line.total),
            ", ".join(f"{a.rule_id} {money(a.amount)}" for a in line.applied),
        )
    console.print(lines)
    console.print(
        f"Subtotal {money(quote.subtotal)}  discount {money(quote.discount_total)}  "
        f"points {money(quote.points.burn_value)}  [bold]total {money(quote.total)}[/]",
        highlight=False,
    )
    rules = Table(title="Rules", title_justify="left")
    rules.add_column("rule")
    rules.add_column("kind")
    rules.add_column("result")
    rules.add_column("why")
    kinds = {rule.id: rule.kind for rule in config.rules}
    applies = {r.id: r.applies_to for r in config.rules if isinstance(r, DiscountRule)}
    for applied in quote.applied:
        capped = " (capped by max_discount)" if applied.capped else ""
        kind = applied.kind + (f"/{applies[applied.rule_id]}" if applied.rule_id in applies else "")
        rules.add_row(applied.rule_id, kind, f"−{money(applied.amount)}", applied.label + capped)
    for earned in quote.points.earned:
        rules.add_row(
            earned.rule_id, kinds.get(earned.rule_id, ""), f"+{earned.points} pts", earned.label
        )
    for issue in quote.coupons.to_issue:
        value = money(issue.amount_off) if issue.amount_off is not None else f"{issue.percent_off}%"
        rules.add_row(
            issue.rule_id,
            "threshold",
            f"coupon {value}",
            f"{issue.label}, until {issue.expires_at.date()}",
        )
    for skipped in quote.not_applied or ():
        rules.add_row(
            skipped.rule_id,
            kinds.get(skipped.rule_id, ""),
            f"[dim]{skipped.code}[/]",
            skipped.message,
        )
    for referral in (r for r in config.rules if isinstance(r, ReferralRule)):  # issue 16
        rules.add_row(
            referral.id,
            "referral",
            "[dim]not priced[/]",
            f"{referral.label}: +{referral.referrer_points} / +{referral.referee_points} pts "
            f"at a referred customer's first sale from {money(referral.min_subtotal)}",
        )
    console.print(rules)
    points = quote.points
    console.print(
        f"Points: balance {points.balance}, burn {points.burn} of {points.burn_requested} asked"
        + (
            f" ({points.burn_limited_by}: {points.burn_limited_message})"
            if points.burn_limited_by
            else ""
        )
        + f", earn {points.earn}, after {points.balance_after}",
        highlight=False,
    )
    for coupon in quote.coupons.applied:
        console.print(
            f"Coupon {coupon.code}: −{money(coupon.amount)} ({coupon.label})", highlight=False
        )
    for rejected in quote.coupons.rejected:
        console.print(
            f"Coupon {rejected.code} refused: {rejected.reason} — {rejected.message}",
            highlight=False,
        )
    if quote.tier is not None:
        tier = quote.tier
        nxt = f", {money(tier.missing)} to {tier.next}" if tier.next and tier.missing else ""
        console.print(f"Tier: {tier.name or '—'}{nxt}", highlight=False)
    for stamp in quote.stamps:
        console.print(
            f"Stamps {stamp.rule_id}: {stamp.count}/{stamp.every}, free now {stamp.free_units}, "
            f"+{stamp.advance} at commit",
            highlight=False,
        )
    for hint in quote.hints:
        console.print(f"[bold yellow]Hint[/] ({hint.rule_id}): {hint.message}", highlight=False)


@rules_app.command("diff")
def diff_files(
    before: Annotated[Path, typer.Argument(help="The program before (TOML).")],
    after: Annotated[Path, typer.Argument(help="The program after (TOML).")],
) -> None:
    """What changed between two program files, rule by rule (as `hq diff` for versions)."""
    from pos_loyalty.hq.diff import diff_programs
    from pos_loyalty.hq.local import printable

    old, new = program_or_exit(before), program_or_exit(after)
    for line in diff_programs(old, new):
        console.print(printable(line), highlight=False, markup=False)


rules_app.command("sync")(sync)
rules_app.command("status")(status)
rules_app.command("reload")(reload)
rules_app.command("dry-run")(dry_run_command)
rules_app.command("report")(report_command)
