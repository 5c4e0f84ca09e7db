"""The compliance chart, drawn on the server as SVG (no chart library to vendor, nothing run in
the browser): each series' share of compliant analyses per day, as a line over the days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# colour-blind safe (Okabe-Ito), in the order series are drawn
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 30, 12, 36


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: str
    rate: float
    analyses: int


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: tuple[Point, ...]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class ComplianceChart:
    width: int
    height: int
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def compliance_chart(series: dict[str, dict[str, tuple[int, int]]]) -> ComplianceChart:
    """``series``: label -> day (``YYYY-MM-DD``) -> (compliant, analyses). A day without
    analyses has no point: a line joins the days that have them."""
    known = sorted({day for by_day in series.values() for day in by_day})
    days = days_between(known[0], known[-1]) if known else []
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    span = max(len(days) - 1, 1)

    def x(day: str) -> float:
        return (
            LEFT + (right - LEFT) * days.index(day) / span if len(days) > 1 else (LEFT + right) / 2
        )

    def y(rate: float) -> float:
        return bottom - (bottom - TOP) * rate

    lines = []
    for index, (label, by_day) in enumerate(series.items()):
        points = tuple(
            Point(x(day), y(compliant / analyses), day, compliant / analyses, analyses)
            for day, (compliant, analyses) in sorted(by_day.items())
            if analyses
        )
        lines.append(Line(label, PALETTE[index % len(PALETTE)], points))
    step = max(1, len(days) // 8)
    x_ticks = tuple(Tick(x(day), day[5:]) for day in days[::step])
    y_ticks = tuple(Tick(y(rate), f"{rate:.0%}") for rate in (0.0, 0.25, 0.5, 0.75, 1.0))
    return ComplianceChart(
        WIDTH, HEIGHT, tuple(lines), x_ticks, y_ticks, (LEFT, TOP, right, bottom)
    )
