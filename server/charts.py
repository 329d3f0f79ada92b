"""Small charts drawn on the server as SVG: stacked bars per month, and a line.

No chart library reaches the phone: a chart is a few dozen shapes in a
viewBox, so it scales to whatever width the page gives it, with a ``<title>``
on every bar and point (a tooltip at a desk) and the numbers behind it in a
table beside it (the template's). Text and grid are drawn in currentColor, so
they follow the page's light or dark colours; the series take the app's
palette. Every label is escaped here, whatever its source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# The app's palette (app.css): accent, brand, sev-low, sev-medium; grey for the rest.
PALETTE = ("#1d4ed8", "#b91c1c", "#166534", "#a16207")
GREY = "#52525b"
# Series a chart names one by one; beyond, the rest are summed as one.
NAMED = len(PALETTE)

WIDTH, HEIGHT = 340, 210
TOP, RIGHT, BOTTOM = 20, 8, 38
FONT = 13
# Room a month's label needs below the axis, in viewBox units.
LABEL_ROOM = 36


@dataclass(frozen=True)
class Tick:
    """One place on the x axis: its short label, the full name for
    tooltips, and the group it belongs to (the year, shown when it changes)."""

    label: str
    full: str
    group: str = ""


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]
    color: str


def number(value: float | None) -> str:
    """A figure as people read it: whole numbers bare, others to one decimal."""
    if value is None:
        return "—"
    if value == round(value):
        return str(int(round(value)))
    return f"{value:.1f}"


def top_series(rows: Sequence[tuple[str, Sequence[int]]], other: str) -> list[Series]:
    """Coloured series for ``rows`` (largest first): the first few by name,
    the rest summed as ``other``, so a chart stays readable however many."""
    if len(rows) <= NAMED + 1:
        colours = [*PALETTE, GREY]
        return [Series(label, values, colours[i]) for i, (label, values) in enumerate(rows)]
    rest = [sum(column) for column in zip(*(values for _, values in rows[NAMED:]), strict=True)]
    named = [Series(label, values, PALETTE[i]) for i, (label, values) in enumerate(rows[:NAMED])]
    return [*named, Series(other, rest, GREY)]


def _scale(highest: float) -> list[int]:
    """Round, evenly spaced gridline values from 0 to at least ``highest``."""
    raw = max(highest, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return [step * i for i in range(math.ceil(max(highest, 1) / step) + 1)]


class _Frame:
    """The axes shared by both kinds: gridlines with their values, month labels."""

    def __init__(self, ticks: Sequence[Tick], highest: float) -> None:
        self.ticks = ticks
        self.grid = _scale(highest)
        self.left = 8 + 8 * len(str(self.grid[-1]))
        self.plot_width = WIDTH - self.left - RIGHT
        self.plot_height = HEIGHT - TOP - BOTTOM
        self.slot = self.plot_width / max(len(ticks), 1)

    def x(self, i: int) -> float:
        """The centre of the ``i``-th month."""
        return self.left + self.slot * (i + 0.5)

    def y(self, value: float) -> float:
        return TOP + self.plot_height * (1 - value / self.grid[-1])

    def axes(self) -> list[str]:
        parts = ['<g class="chart-grid" fill="currentColor">']
        for value in self.grid:
            y = self.y(value)
            parts.append(
                f'<line x1="{self.left}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="currentColor" stroke-opacity="{0.6 if value == 0 else 0.18}"/>'
                f'<text x="{self.left - 5}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
            )
        parts.append("</g>")
        parts.append('<g class="chart-x" fill="currentColor" text-anchor="middle">')
        every = math.ceil(len(self.ticks) * LABEL_ROOM / self.plot_width)
        group = None
        for i, tick in enumerate(self.ticks):
            # Counted from the right, so this month is always named.
            if (len(self.ticks) - 1 - i) % every:
                continue
            x = self.x(i)
            bottom = TOP + self.plot_height
            parts.append(f'<text x="{x:.1f}" y="{bottom + 16}">{escape(tick.label)}</text>')
            if tick.group != group:
                parts.append(
                    f'<text x="{x:.1f}" y="{bottom + 31}" font-weight="700">'
                    f"{escape(tick.group)}</text>"
                )
                group = tick.group
        parts.append("</g>")
        return parts


def _room_for(frame: _Frame, values: Sequence[float]) -> bool:
    """Whether the widest of ``values`` fits above its month without touching the next."""
    widest = max((len(number(v)) for v in values), default=0)
    return frame.slot >= 8 * widest + 4


def _svg(title: str, parts: list[str], kind: str) -> Markup:
    return Markup(
        f'<svg class="chart chart-{kind}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'font-size="{FONT}"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _tip(tick: Tick, series: Series, value: float | None, unit: str) -> str:
    amount = f"{number(value)} {unit}".strip()
    return f"<title>{escape(tick.full)} · {escape(series.label)}: {escape(amount)}</title>"


def bar_chart(
    ticks: Sequence[Tick], series: Sequence[Series], *, title: str, unit: str = ""
) -> Markup:
    """Bars per month, the series stacked, with each month's total on top."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(ticks))]
    frame = _Frame(ticks, max(totals, default=0))
    parts = frame.axes()
    width = max(frame.slot * 0.7, 1.5)
    parts.append('<g class="chart-bars">')
    for i, tick in enumerate(ticks):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            parts.append(
                f'<rect x="{frame.x(i) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
                f'height="{bottom - top:.1f}" fill="{s.color}">{_tip(tick, s, value, unit)}</rect>'
            )
            base += value
    parts.append("</g>")
    # Totals only where there is room to read them.
    if _room_for(frame, totals):
        parts.append('<g class="chart-values" fill="currentColor" text-anchor="middle">')
        for i, total in enumerate(totals):
            if total:
                parts.append(
                    f'<text x="{frame.x(i):.1f}" y="{frame.y(total) - 4:.1f}" '
                    f'font-weight="700">{number(total)}</text>'
                )
        parts.append("</g>")
    return _svg(title, parts, "bars")


def line_chart(
    ticks: Sequence[Tick], series: Sequence[Series], *, title: str, unit: str = ""
) -> Markup:
    """A line per series through the months that have a value; a month
    without one breaks the line rather than pretending it was zero."""
    values = [v for s in series for v in s.values if v is not None]
    frame = _Frame(ticks, max(values, default=0))
    parts = frame.axes()
    label_values = len(series) == 1 and _room_for(frame, values)
    for s in series:
        parts.append(f'<g class="chart-line" fill="{s.color}" stroke="{s.color}">')
        run: list[str] = []
        for i, value in enumerate([*s.values, None]):
            if value is not None:
                run.append(f"{frame.x(i):.1f},{frame.y(value):.1f}")
                continue
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke-width="2.5" '
                    'stroke-linejoin="round"/>'
                )
            run = []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            x, y = frame.x(i), frame.y(value)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" stroke="none">'
                f"{_tip(ticks[i], s, value, unit)}</circle>"
            )
            if label_values:
                parts.append(
                    f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" stroke="none" '
                    f'fill="currentColor" font-weight="700">{number(value)}</text>'
                )
        parts.append("</g>")
    return _svg(title, parts, "line")
