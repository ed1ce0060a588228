"""A PNG bar chart of segment sizes (matplotlib, Agg: no display needed on a store server)."""

from __future__ import annotations

from datetime import UTC, tzinfo
from pathlib import Path

from pos_loyalty.rules.messages import is_russian
from pos_loyalty.segments.service import SegmentSummary, iter_segment_titles


def draw_segment_chart(
    summary: SegmentSummary, path: Path, *, locale: str = "ru_RU", tz: tzinfo = UTC
) -> None:
    """Customers per segment as horizontal bars, labelled with count and share; the run's time
    in the store's zone `tz`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ru = is_russian(locale)
    titles = dict(iter_segment_titles([s.name for s in summary.segments], locale))
    names = [titles[s.name] for s in summary.segments][::-1]
    counts = [s.customers for s in summary.segments][::-1]
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5), dpi=100)
    try:
        bars = axes.barh(names, counts, color="#3b7dd8")
        for bar, count in zip(bars, counts, strict=True):
            share = count / summary.scored * 100 if summary.scored else 0.0
            axes.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {count} ({share:.1f} %)",
                va="center",
                fontsize=9,
            )
        computed = summary.computed_at.astimezone(tz) if summary.computed_at else None
        when = computed.strftime("%d.%m.%Y %H:%M %Z") if computed else "—"
        axes.set_title(f"Сегменты RFM, {when}" if ru else f"RFM segments, {when}", fontsize=12)
        axes.set_xlabel("покупатели" if ru else "customers")
        axes.set_xlim(0, max([*counts, 1]) * 1.25)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
