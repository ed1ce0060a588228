"""`coupons generate` and `coupons issue`: coupons for a campaign from the shell, audited."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pos_loyalty.cli.care import in_store, shell_operator
from pos_loyalty.cli.common import ConfigOption, console
from pos_loyalty.coupons.campaigns import (
    generate_coupons,
    issue_to_segment,
    write_coupons_csv,
    write_outreach_csv,
)

coupons_app = typer.Typer(help="Coupons for campaigns.", no_args_is_help=True)

RuleOption = Annotated[
    str, typer.Option("--rule", help="A rule whose coupon to use (threshold reward, personal).")
]
CsvPath = Annotated[Path | None, typer.Option("--csv", help="Write the list here as CSV.")]


@coupons_app.command("generate")
def coupons_generate(
    rule: RuleOption,
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many.")],
    csv_path: CsvPath = None,
    config: ConfigOption = None,
) -> None:
    """Bearer coupons of a rule's coupon to hand out (flyers, partners)."""
    made = in_store(
        config,
        lambda store, uow: generate_coupons(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=shell_operator(),
            rule_id=rule,
            count=count,
            now=store.now(),
        ),
    )
    if csv_path is not None:
        write_coupons_csv(made, csv_path)
    for coupon in made[:10]:
        console.print(f"{coupon.display_code}  {coupon.label}", markup=False)
    where = f" to {csv_path}" if csv_path is not None else ""
    console.print(f"generated {len(made)} coupon(s) of rule {rule}{where}", markup=False)


@coupons_app.command("issue")
def coupons_issue(
    rule: RuleOption,
    segment: Annotated[str, typer.Option(help="RFM segment, e.g. lapsed.")],
    inactive_days: Annotated[
        int, typer.Option(min=0, help="Only customers away at least this many days.")
    ] = 0,
    csv_path: CsvPath = None,
    config: ConfigOption = None,
) -> None:
    """A coupon for each consenting customer of a segment, exported with the contacts they
    allowed (phone in clear only where kept and consented to `sms`, e-mail only with consent
    `email`) for an SMS or e-mail service; one reachable by neither gets none."""
    outreach = in_store(
        config,
        lambda store, uow: issue_to_segment(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=shell_operator(),
            rule_id=rule,
            segment=segment,
            inactive_days=inactive_days,
            now=store.now(),
        ),
    )
    if csv_path is not None:
        write_outreach_csv(outreach, csv_path)
    clear = sum(r.phone_in_clear for r in outreach.rows)
    emails = sum(bool(r.email) for r in outreach.rows)
    console.print(
        f"issued {len(outreach.rows)} coupon(s) of rule {rule} to segment {segment} "
        f"({clear} with the phone in clear, {emails} with an e-mail); "
        f"{outreach.without_consent} without consent or contact and "
        f"{outreach.already_holding} already holding one left out"
        + (f"; wrote {csv_path}" if csv_path is not None else ""),
        markup=False,
    )
