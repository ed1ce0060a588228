"""`pos-loyalty rules validate|explain`: check a rules file, and price a basket with every reason.

Both work on files only (no database, no server), so head office and support can run them anywhere.
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
from rich.markup import escape
from rich.table import Table

from pos_loyalty.cli.common import ConfigOption, err_console, load_or_exit, open_store_or_exit
from pos_loyalty.money import format_money, qty_to_json
from pos_loyalty.rules import RulesConfig, RulesConfigError, compile_rules, evaluate
from pos_loyalty.rules.config import DiscountRule, ReferralRule, load_rules_file
from pos_loyalty.rules.inputs import PresentedCoupon
from pos_loyalty.rules.payload import BasketIn, CouponIn, CustomerIn
from pos_loyalty.rules.quote import Quote
from pos_loyalty.settings import CONFIG_ENV, DEFAULT_CONFIG_PATH
from pos_loyalty.store import Store

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
        err_console.print(f"[bold red]Invalid rules[/] in {exc.source}:", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  • {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None


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
    """The `[store]` table of a full config.toml, if the rules file is one (for locale, tz)."""
    try:
        store = tomllib.loads(path.read_text(encoding="utf-8")).get("store", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return store if isinstance(store, dict) else {}


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
            now = datetime.fromisoformat(at)
        except ValueError:
            err_console.print(f"[bold red]--at[/] {at!r} is not an ISO time", highlight=False)
            raise typer.Exit(1) from None
        now = now.replace(tzinfo=tz) if now.tzinfo is None else now
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
    compiled = compile_rules(config, tz=tz)
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


def _store_with_hq(config: Path | None) -> Store:
    settings = load_or_exit(config)
    if settings.hq is None:
        err_console.print(
            f"[bold red]No head office:[/] {settings.source} has no [hq] section; this store "
            "runs the program in its config.toml (`rules reload` re-reads it)",
            highlight=False,
        )
        raise typer.Exit(2)
    return open_store_or_exit(settings)


@rules_app.command("sync")
def sync(config: ConfigOption = None) -> None:
    """Pull head office's current bundle now; the running service activates it at its moment."""
    from pos_loyalty.hq.local import apply_active
    from pos_loyalty.hq.sync import pull_once

    store = _store_with_hq(config)
    try:
        outcome = pull_once(store=store)
        apply_active(store=store, now=store.now())
    finally:
        store.close()
    style = {"accepted": "green", "unchanged": "green"}.get(outcome.result, "red")
    console.print(f"[bold {style}]{outcome.result}[/]: {escape(outcome.message)}", highlight=False)
    if outcome.result in ("refused", "failed"):
        raise typer.Exit(1)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


@rules_app.command("status")
def status(config: ConfigOption = None) -> None:
    """Which program runs: active bundle and since when, pending, last sync, last error."""
    from pos_loyalty.hq.local import local_status

    settings = load_or_exit(config)
    if settings.hq is None:
        version = compile_rules(
            RulesConfig(points=settings.points, tiers=settings.tiers, rules=settings.rules)
        ).version
        console.print(
            f"program from {settings.source} (version {version}); no head office", highlight=False
        )
        return
    store = open_store_or_exit(settings)
    try:
        with store.uow() as uow:
            st = local_status(uow=uow)
    finally:
        store.close()
    active = (
        f"v{st.active_version} since {_when(st.active_since)}"
        if st.active_version
        else (f"none from head office yet (program from {settings.source})")
    )
    pending = f"v{st.pending_version} from {_when(st.pending_from)}" if st.pending_version else "—"
    console.print(f"active: {active}", highlight=False)
    console.print(f"pending: {pending}", highlight=False)
    console.print(
        f"last sync: {_when(st.last_success_at)} (last attempt {_when(st.last_attempt_at)})",
        highlight=False,
    )
    error = f"{escape(st.last_error)} at {_when(st.last_error_at)}" if st.last_error else "—"
    console.print(f"last error: {error}", highlight=False)


@rules_app.command("reload")
def reload(config: ConfigOption = None) -> None:
    """Check config.toml's program and make the running `serve` re-read it (SIGHUP)."""
    import signal

    from pos_loyalty.hq.reload import pid_file

    settings = load_or_exit(config)  # a mistake stops here; the running program is untouched
    path = pid_file(settings.source)
    try:
        pid = int(path.read_text(encoding="ascii").strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        err_console.print(
            f"[bold red]No running service[/] for {settings.source} ({path} missing or stale)",
            highlight=False,
        )
        raise typer.Exit(1) from None
    what = "pull from head office now" if settings.hq else "re-read its program"
    console.print(f"asked serve (pid {pid}) to {what}", highlight=False)


def _since_or_exit(text: str, now: datetime) -> datetime:
    from pos_loyalty.hq.results import since_moment

    try:
        return since_moment(text, now=now)
    except ValueError as exc:
        err_console.print(f"[bold red]--since[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


@rules_app.command("dry-run")
def dry_run_command(
    program_file: Annotated[Path, typer.Argument(help="The proposed program TOML.")],
    since: Annotated[str, typer.Option(help="Replay sales since: 90d, 12h or a date.")] = "90d",
    config: ConfigOption = None,
) -> None:
    """Forecast: replay past sales under the proposed program and compare with the running one
    (per rule: baskets, discount, points and their liability, coupons). Writes nothing."""
    from rich.progress import Progress

    from pos_loyalty.hq.local import running_program
    from pos_loyalty.hq.publish import load_program_file
    from pos_loyalty.hq.replay import dry_run

    settings = load_or_exit(config)
    try:
        program = load_program_file(program_file)
    except RulesConfigError as exc:
        err_console.print(f"[bold red]Invalid rules[/] in {exc.source}:", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  • {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    store = open_store_or_exit(settings, migrate=False)
    try:
        now = store.now()
        start = _since_or_exit(since, now)
        active = running_program(store=store, now=now)
        with Progress(console=err_console, transient=True) as bar, store.uow() as uow:
            task = bar.add_task("replaying sales", total=None)
            result = dry_run(
                uow=uow,
                active=active,
                proposed=program.compile(tz=settings.store.tz),
                since=start,
                locale=settings.store.locale,
                currency=settings.store.currency,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        store.close()
    _print_dry_run(result, settings.store.locale, settings.store.currency)


def _print_dry_run(result: Any, locale: str, currency: str) -> None:
    def money(amount: int) -> str:
        return format_money(amount, currency, locale)

    console.print(
        f"{result.sales} sales since {result.since.date()}: running {result.active_version} → "
        f"proposed {result.proposed_version}",
        highlight=False,
    )
    table = Table(title="Per rule: running → proposed", title_justify="left")
    for column in ("rule", "baskets", "discount", "points", "liability", "coupons"):
        table.add_column(column, justify="left" if column == "rule" else "right")

    def row(name: str, a: Any, p: Any) -> None:
        av, pv = result.active_point_value, result.proposed_point_value
        table.add_row(
            escape(name),
            f"{a.baskets} → {p.baskets}",
            f"{money(a.discount)} → {money(p.discount)}",
            f"{a.points} → {p.points}",
            f"{money(a.liability(av))} → {money(p.liability(pv))}",
            f"{a.coupons} → {p.coupons}",
        )

    for rule in result.rules:
        row(rule.rule_id, rule.active, rule.proposed)
    row("TOTAL", result.active_total, result.proposed_total)
    console.print(table)


@rules_app.command("report")
def report_command(
    since: Annotated[str, typer.Option(help="Period start: 30d, 12h or a date.")] = "30d",
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG chart.")] = None,
    config: ConfigOption = None,
) -> None:
    """What each rule did: baskets, discount, points issued and burned, coupons issued and
    redeemed (rate), revenue of the baskets it touched."""
    from pos_loyalty.hq.results import results_report

    settings = load_or_exit(config)
    store = open_store_or_exit(settings, migrate=False)
    try:
        now = store.now()
        with store.uow() as uow:
            report = results_report(uow=uow, since=_since_or_exit(since, now), until=now)
        point_value = store.rules.points.point_value_minor
    finally:
        store.close()
    locale, currency = settings.store.locale, settings.store.currency

    def money(amount: int) -> str:
        return format_money(amount, currency, locale)

    table = Table(
        title=f"Rule results {report.since.date()} – {report.until.date()}: {report.sales} sales, "
        f"{money(report.revenue)}",
        title_justify="left",
    )
    columns = ("rule", "baskets", "discount", "points +", "points −", "coupons", "redeemed")
    for column in (*columns, "revenue"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for r in report.rules:
        table.add_row(
            escape(r.rule_id),
            str(r.baskets),
            money(r.discount),
            str(r.points_issued),
            str(r.points_burned),
            str(r.coupons_issued),
            f"{r.coupons_redeemed} ({r.redemption_rate:.0%})",
            money(r.revenue),
        )
    console.print(table)
    if csv_out is not None:
        csv_out.write_text(report.to_csv(), encoding="utf-8")
        console.print(f"CSV: {csv_out}", highlight=False)
    if chart is not None:
        from pos_loyalty.hq.results_chart import draw_results_chart

        draw_results_chart(report, chart, point_value_minor=point_value, locale=locale)
        console.print(f"chart: {chart}", highlight=False)


@rules_app.command("diff")
def diff_files(
    before: Annotated[Path, typer.Argument(help="The program before (TOML).")],
    after: Annotated[Path, typer.Argument(help="The program after (TOML).")],
) -> None:
    """What changed between two program files, rule by rule (as `hq diff` for versions)."""
    from pos_loyalty.hq.diff import diff_programs
    from pos_loyalty.hq.local import printable
    from pos_loyalty.hq.publish import load_program_file

    try:
        old, new = load_program_file(before), load_program_file(after)
    except RulesConfigError as exc:
        err_console.print(f"[bold red]Invalid rules[/] in {exc.source}:", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  • {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for line in diff_programs(old, new):
        console.print(printable(line), highlight=False, markup=False)
