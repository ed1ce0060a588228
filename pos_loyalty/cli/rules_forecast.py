"""`pos-loyalty rules dry-run|report`: forecast a program on past sales, and what each rule
actually did over a period (table, CSV, chart)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
    program_or_exit,
)
from pos_loyalty.money import format_money


def _since_or_exit(text: str, now: datetime, tz: tzinfo) -> datetime:
    from pos_loyalty.hq.results import since_moment

    try:
        return since_moment(text, now=now, tz=tz)
    except ValueError as exc:
        err_console.print(f"[bold red]--since[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


def dry_run_command(
    program_file: Annotated[Path, typer.Argument(help="The proposed program TOML.")],
    since: Annotated[str, typer.Option(help="Replay sales since: 90d, 12h or a date.")] = "90d",
    config: ConfigOption = None,
) -> None:
    """Forecast: replay past sales under the proposed program and compare with the running one
    (per rule: baskets, discount, points and their liability, coupons). Writes nothing."""
    from rich.progress import Progress

    from pos_loyalty.hq.local import running_program
    from pos_loyalty.hq.replay import dry_run

    settings = load_or_exit(config)
    program = program_or_exit(program_file)
    store = open_store_or_exit(settings, migrate=False)
    try:
        now = store.now()
        start = _since_or_exit(since, now, settings.store.tz)
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
            report = results_report(
                uow=uow, since=_since_or_exit(since, now, settings.store.tz), until=now
            )
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
