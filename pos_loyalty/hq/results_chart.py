"""A PNG of the results report: per rule, what it cost (discount and points at point value) next
to the revenue of the baskets it touched (matplotlib, Agg, like the RFM chart)."""

from __future__ import annotations

from pathlib import Path

from pos_loyalty.hq.results import ResultsReport
from pos_loyalty.rules.messages import is_russian


def draw_results_chart(
    report: ResultsReport, path: Path, *, point_value_minor: int, locale: str = "ru_RU"
) -> None:
    """Horizontal bars per rule: cost and revenue of touched baskets, in major units."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ru = is_russian(locale)
    rules = report.rules[::-1]
    names = [r.rule_id for r in rules]
    cost = [(r.discount + r.points_issued * point_value_minor) / 100 for r in rules]
    revenue = [r.revenue / 100 for r in rules]
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(names) + 1.8), dpi=100)
    try:
        positions = range(len(names))
        axes.barh(
            [p + 0.2 for p in positions],
            revenue,
            height=0.4,
            color="#3b7dd8",
            label="выручка чеков" if ru else "revenue of baskets",
        )
        axes.barh(
            [p - 0.2 for p in positions],
            cost,
            height=0.4,
            color="#d8573b",
            label="стоимость (скидка + баллы)" if ru else "cost (discount + points)",
        )
        axes.set_yticks(list(positions), names)
        span = f"{report.since:%d.%m.%Y} – {report.until:%d.%m.%Y}"
        axes.set_title(f"Итоги правил, {span}" if ru else f"Rule results, {span}", fontsize=12)
        axes.legend(loc="lower right", fontsize=9)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
