"""Charts for the head-office console as server-rendered SVG: no chart library, no script.

Python works out the geometry (integers in, coordinates out); `hq_chart.html` draws it, so every
label (a rule's id, a segment's name) reaches the page escaped like any other text. Colours are
classes (`s0`, `s1` …) styled in pages.css: the CSP allows no inline style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LABEL_W = 190  # the left column for row names
VALUE_W = 110  # room right of the longest bar for its value
BAR_H = 14
GAP = 10


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Text:
    x: int
    y: int
    text: str
    anchor: str = "start"
    css: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    line: str = ""  # polyline points
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css, name)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    rows: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
    fmt: Callable[[int], str],
    *,
    width: int = 640,
    label_w: int = LABEL_W,
) -> Chart:
    """Horizontal bars: one group per row, one bar per series, each labelled with its value."""
    span = width - label_w - VALUE_W
    top = max([0, *(max(values, default=0) for _, values in rows)]) or 1
    group = BAR_H * len(series) + GAP
    bars: list[Bar] = []
    texts: list[Text] = []
    for index, (name, values) in enumerate(rows):
        y0 = GAP + index * group
        texts.append(Text(label_w - 8, y0 + group // 2, _short(name, label_w // 7), "end", "name"))
        for k, value in enumerate(values):
            length = max(0, round(span * max(value, 0) / top))
            y = y0 + k * BAR_H
            bars.append(Bar(label_w, y, length, BAR_H - 2, f"s{k}", f"{series[k]}: {fmt(value)}"))
            texts.append(Text(label_w + length + 4, y + BAR_H - 4, fmt(value), css="value"))
    height = GAP * 2 + group * max(len(rows), 1)
    legend = [(f"s{k}", name) for k, name in enumerate(series)] if len(series) > 1 else []
    return Chart(width, height, bars, texts, legend=legend)


def line_chart(
    points: Sequence[tuple[str, int]],
    fmt: Callable[[int], str],
    *,
    width: int = 640,
    height: int = 200,
) -> Chart:
    """A value over time: the line, its first and last day, and the highest and latest values."""
    left, right, top_pad, bottom = 10, VALUE_W, 16, 24
    if not points:
        return Chart(width, height)
    highest = max(value for _, value in points)
    top = highest or 1
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    step = plot_w / max(len(points) - 1, 1)
    coords = [
        (round(left + i * step), round(top_pad + plot_h - plot_h * max(v, 0) / top))
        for i, (_, v) in enumerate(points)
    ]
    texts = [
        Text(left, height - 6, points[0][0], css="axis"),
        Text(coords[-1][0] + 6, coords[-1][1] + 4, fmt(points[-1][1]), css="value"),
        Text(left, top_pad - 4, fmt(highest), css="axis"),
    ]
    if len(points) > 1:
        texts.append(Text(coords[-1][0], height - 6, points[-1][0], "end", "axis"))
    baseline = Bar(left, top_pad + plot_h, plot_w, 1, "axis", "")
    line = " ".join(f"{x},{y}" for x, y in coords)
    return Chart(width, height, [baseline], texts, line=line)
