"""`/hq/fleet` and `/hq/reports`: each store's version and health, and the chain's figures.

The fleet is what each store said at its last pull (`hq.fleet`), refreshed on the page every few
seconds. The reports hold two sources, and say which: the rules results are computed from the
sales in head office's database (`hq.results`, as `GET /v1/hq/results`: a chain's PostgreSQL),
while the RFM segments, the points liability and the coupon funnel are what the stores reported
of their own books with their pulls (`hq.figures`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.pages.hq_charts import bar_chart, line_chart
from api.pages.hq_common import SINCE_MAX, HqPage, page_store, period_start
from api.pages.render import render, words_for
from pos_loyalty.hq.figures import ChainFigures, chain_figures
from pos_loyalty.hq.fleet import fleet
from pos_loyalty.hq.results import ResultsReport, results_report
from pos_loyalty.segments.service import iter_segment_titles

router = APIRouter(include_in_schema=False)
LIABILITY_DAYS = 30
NARROW = {"width": 400, "label_w": 120}  # a chart in one of three columns


def _fleet(request: Request) -> list[Any]:
    with page_store(request).uow() as uow:
        return fleet(uow=uow)


@router.get("/hq/fleet")
def fleet_page(request: Request, _: HqPage) -> Response:
    context = {"section": "fleet", "fleet": _fleet(request)}
    return render(request, "hq_fleet.html", context)


@router.get("/hq/fleet/live")
def fleet_live(request: Request, _: HqPage) -> Response:
    """The fleet table alone, fetched by the page's script every few seconds."""
    return render(request, "hq_fleet_live.html", {"fleet": _fleet(request)})


def _results_chart(report: ResultsReport, point_value: int, request: Request) -> Any:
    w = words_for(request)
    rows = [
        (r.rule_id, [r.revenue, r.discount + r.points_issued * point_value]) for r in report.rules
    ]
    return bar_chart(rows, [w("hq.revenue"), w("hq.cost")], w.money)


def _chain_charts(figures: ChainFigures, request: Request) -> dict[str, Any]:
    w = words_for(request)
    store = page_store(request)
    titles = dict(iter_segment_titles([name for name, _ in figures.segments], w.locale))
    segments = [(titles.get(name, name), count) for name, count in figures.segments]
    funnel = [
        (w("hq.coupons_issued"), [figures.coupons_issued]),
        (w("hq.coupons_redeemed"), [figures.coupons_redeemed]),
        (w("hq.coupons_expired"), [figures.coupons_expired]),
    ]
    by_day = [(day.strftime("%d.%m"), value) for day, value in figures.liability_by_day]
    return {
        "segments": segments,
        "segments_chart": bar_chart(
            [(name, [count]) for name, count in segments], [w("hq.customers")], str, **NARROW
        ),
        "funnel_chart": bar_chart(funnel, [w("hq.coupons")], str, **NARROW),
        "liability_chart": line_chart(by_day, w.money, width=400, height=160),
        "scored": sum(count for _, count in figures.segments),
        "tz": store.settings.store.tz,
    }


@router.get("/hq/reports")
def reports_page(
    request: Request,
    _: HqPage,
    since: Annotated[str, Query(max_length=SINCE_MAX)] = "30d",
) -> Response:
    store = page_store(request)
    since, start = period_start(request, since, "30d")
    now = store.now()
    with store.uow() as uow:
        report = results_report(uow=uow, since=start, until=now)
        figures = chain_figures(
            uow=uow,
            today=now.astimezone(store.settings.store.tz).date(),
            days=LIABILITY_DAYS,
            order=list(store.settings.segments.names),
        )
    context = {
        "section": "reports",
        "since": since,
        "report": report,
        "results_chart": _results_chart(report, store.rules.points.point_value_minor, request),
        "figures": figures,
        **_chain_charts(figures, request),
    }
    return render(request, "hq_reports.html", context)
