"""`/hq/bundles/{v}/dry-run`: a published version replayed over the sales in this database,
rule by rule against another version (by default the one before it), with a chart.

It calls `hq.replay.dry_run` as the API and `rules dry-run` do; it only reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.pages.hq_charts import bar_chart
from api.pages.hq_common import SINCE_MAX, HqPage, page_store, period_start
from api.pages.render import render, words_for
from pos_loyalty.errors import DomainError
from pos_loyalty.hq.publish import published_program
from pos_loyalty.hq.replay import DryRun, RuleFigures, dry_run

router = APIRouter(include_in_schema=False)


def _cost(figures: RuleFigures, point_value: int) -> int:
    """What a rule gives away, in minor units: its discount and its points at point value."""
    return figures.discount + figures.liability(point_value)


def _rows(result: DryRun) -> list[dict[str, Any]]:
    av, pv = result.active_point_value, result.proposed_point_value
    rows = []
    for rule in result.rules:
        rows.append(
            {
                "rule_id": rule.rule_id,
                "label": rule.label,
                "active": rule.active,
                "proposed": rule.proposed,
                "active_liability": rule.active.liability(av),
                "proposed_liability": rule.proposed.liability(pv),
                "active_cost": _cost(rule.active, av),
                "proposed_cost": _cost(rule.proposed, pv),
            }
        )
    return rows


@router.get("/hq/bundles/{version}/dry-run")
def dry_run_page(
    request: Request,
    version: int,
    _: HqPage,
    since: Annotated[str, Query(max_length=SINCE_MAX)] = "90d",
    against: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    store = page_store(request)
    w = words_for(request)
    since, start = period_start(request, since, "90d")
    base = against if against is not None else (version - 1 if version > 1 else None)
    tz = store.settings.store.tz
    try:
        with store.uow() as uow:
            proposed = published_program(uow=uow, version=version)[1].compile(tz=tz)
            active = (
                published_program(uow=uow, version=base)[1].compile(tz=tz)
                if base is not None
                else store.rules
            )
            result = dry_run(
                uow=uow,
                active=active,
                proposed=proposed,
                since=start,
                locale=store.settings.store.locale,
                currency=store.settings.store.currency,
            )
    except DomainError as exc:
        context = {"section": "bundles", "error": exc.message, "version": version}
        return render(request, "hq_dryrun.html", context, status_code=exc.status)
    rows = _rows(result)
    chart = bar_chart(
        [(row["rule_id"], [row["active_cost"], row["proposed_cost"]]) for row in rows],
        [f"v{base}" if base else w("hq.dry_own"), f"v{version}"],
        w.money,
    )
    context = {
        "section": "bundles",
        "version": version,
        "against": base,
        "since": since,
        "result": result,
        "rows": rows,
        "total": {
            "active": result.active_total,
            "proposed": result.proposed_total,
            "active_liability": result.active_total.liability(result.active_point_value),
            "proposed_liability": result.proposed_total.liability(result.proposed_point_value),
        },
        "chart": chart,
    }
    return render(request, "hq_dryrun.html", context)
