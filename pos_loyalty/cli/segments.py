"""`segments rfm` and `segments export`: score customers, and list who to contact."""

from __future__ import annotations

from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
)
from pos_loyalty.money import format_money
from pos_loyalty.segments.service import (
    RFM_STAGES,
    SegmentSummary,
    compute_rfm,
    contact_list,
    iter_segment_titles,
    segment_summary,
    write_contacts_csv,
    write_scores_csv,
)

segments_app = typer.Typer(help="RFM segments of the customers.", no_args_is_help=True)

CsvOption = Annotated[
    Path | None, typer.Option("--csv", help="Also write the rows to this CSV file.")
]
EXPORT_PREVIEW_ROWS = 30


@segments_app.command("rfm")
def segments_rfm(
    config: ConfigOption = None,
    csv_path: CsvOption = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw segment sizes to this PNG file.")
    ] = None,
) -> None:
    """Score every customer's recency, frequency and monetary value in quintiles and store
    their named segment (used by rules with `when.segments`)."""
    settings = load_or_exit(config)
    store = open_store_or_exit(settings)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("RFM", total=len(RFM_STAGES))
            done = {"stages": 0}

            def report(stage: str) -> None:
                progress.update(task, completed=done["stages"], description=f"RFM: {stage}")
                done["stages"] += 1

            with store.uow(write=True) as uow:
                summary = compute_rfm(
                    uow=uow, config=settings.segments, now=store.now(), progress=report
                )
            progress.update(task, completed=len(RFM_STAGES), description="RFM: done")
        print_summary(
            summary,
            currency=settings.store.currency,
            locale=settings.store.locale,
            tz=settings.store.tz,
        )
        if csv_path is not None:
            with store.uow() as uow:
                rows = write_scores_csv(session=uow.session, path=csv_path)
            console.print(f"wrote {rows} customers to {csv_path}")
        if chart is not None:
            from pos_loyalty.segments.chart import draw_segment_chart

            draw_segment_chart(summary, chart, locale=settings.store.locale, tz=settings.store.tz)
            console.print(f"drew the chart to {chart}")
    finally:
        store.close()


def print_summary(summary: SegmentSummary, *, currency: str, locale: str, tz: tzinfo = UTC) -> None:
    """The segment table; the run's time in the store's zone `tz`."""
    computed = summary.computed_at.astimezone(tz) if summary.computed_at else None
    when = computed.isoformat(timespec="seconds") if computed else "never"
    table = Table(title=f"RFM segments (computed {when})")
    for column in ("segment", "name", "customers", "share", "avg purchases", "avg spend"):
        table.add_column(column, justify="left" if column in ("segment", "name") else "right")
    titles = dict(iter_segment_titles([s.name for s in summary.segments], locale))
    for segment in summary.segments:
        table.add_row(
            segment.name,
            titles[segment.name],
            str(segment.customers),
            f"{segment.share(summary.scored) * 100:.1f} %",
            f"{segment.avg_frequency:.1f}",
            format_money(segment.avg_monetary, currency, locale),
        )
    console.print(table)
    console.print(
        f"{summary.scored} customers scored; "
        f"{summary.customers - summary.scored} enrolled without a purchase are not"
    )


@segments_app.command("export")
def segments_export(
    segment: Annotated[str, typer.Option("--segment", help="Segment name, e.g. lapsed.")],
    config: ConfigOption = None,
    csv_path: CsvOption = None,
) -> None:
    """Who to contact in a segment: masked name and phone, only customers who gave one of the
    `[segments] contact_consents` (default: marketing, sms, email)."""
    settings = load_or_exit(config)
    if segment not in settings.segments.names:
        err_console.print(
            f"unknown segment {segment!r} (segments: {', '.join(settings.segments.names)})"
        )
        raise typer.Exit(2)
    store = open_store_or_exit(settings)
    try:
        with store.uow() as uow:
            summary = segment_summary(session=uow.session, config=settings.segments)
            contacts = contact_list(
                session=uow.session,
                config=settings.segments,
                segment=segment,
                now=store.now(),
                tz=settings.store.tz,
            )
    finally:
        store.close()
    if summary.computed_at is None:
        err_console.print("no RFM run yet: run `pos-loyalty segments rfm` first")
        raise typer.Exit(1)
    table = Table(title=f"{segment}: who to contact")
    for column in ("customer", "name", "phone", "last purchase", "days", "spent", "channels"):
        table.add_column(column)
    for contact in contacts.contacts[:EXPORT_PREVIEW_ROWS]:
        table.add_row(
            contact.customer_id,
            contact.name,
            contact.phone,
            contact.last_purchase.strftime("%d.%m.%Y"),
            str(contact.days_since_last),
            format_money(contact.monetary, settings.store.currency, settings.store.locale),
            ", ".join(contact.channels),
        )
    console.print(table)
    more = len(contacts.contacts) - EXPORT_PREVIEW_ROWS
    if more > 0:
        console.print(f"… and {more} more (use --csv for the whole list)")
    consents = ", ".join(settings.segments.contact_consents)
    console.print(
        f"{len(contacts.contacts)} to contact; {contacts.without_consent} left out "
        f"(no consent among: {consents})"
    )
    if csv_path is not None:
        write_contacts_csv(contacts, csv_path)
        console.print(f"wrote {len(contacts.contacts)} contacts to {csv_path}")
