"""Pure 2-D geometry on axis-aligned boxes in image pixels (origin top-left, x right, y down)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle ``[x1, y1, x2, y2]`` with ``x1 <= x2`` and ``y1 <= y2``."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x1 <= self.x2 and self.y1 <= self.y2):
            raise ValueError(f"box corners out of order: {self.as_list()}")

    @classmethod
    def from_list(cls, values: list[float] | tuple[float, ...]) -> Box:
        x1, y1, x2, y2 = (float(v) for v in values)
        return cls(x1, y1, x2, y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> Point:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    @property
    def area(self) -> float:
        return self.width * self.height

    def translate(self, dx: float, dy: float) -> Box:
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def clip(self, width: float, height: float) -> Box:
        """The part of the box inside an image of this size (detectors may report slightly outside)."""
        x1, x2 = sorted((min(max(self.x1, 0.0), width), min(max(self.x2, 0.0), width)))
        y1, y2 = sorted((min(max(self.y1, 0.0), height), min(max(self.y2, 0.0), height)))
        return Box(x1, y1, x2, y2)

    def overlaps(self, other: Box) -> bool:
        """Whether the two boxes share some area (touching edges do not count)."""
        return (
            other.x1 < self.x2 and self.x1 < other.x2 and other.y1 < self.y2 and self.y1 < other.y2
        )

    def union(self, other: Box) -> Box:
        """The smallest box holding both."""
        return Box(
            min(self.x1, other.x1),
            min(self.y1, other.y1),
            max(self.x2, other.x2),
            max(self.y2, other.y2),
        )

    def normalised(self, width: float, height: float) -> list[float]:
        return [self.x1 / width, self.y1 / height, self.x2 / width, self.y2 / height]

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


def _axis_gap(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> float:
    return max(0.0, b_lo - a_hi, a_lo - b_hi)


def gap(a: Box, b: Box) -> float:
    """Shortest distance between two rectangles; 0 when they touch or overlap."""
    return math.hypot(_axis_gap(a.x1, a.x2, b.x1, b.x2), _axis_gap(a.y1, a.y2, b.y1, b.y2))


def iou(a: Box, b: Box) -> float:
    """Intersection over union, the usual measure of how well two boxes agree; 0 for empty boxes."""
    shared = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1)) * max(
        0.0, min(a.y2, b.y2) - max(a.y1, b.y1)
    )
    union = a.area + b.area - shared
    return shared / union if union > 0 else 0.0


def _closest_on_axis(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> tuple[float, float]:
    if a_hi < b_lo:
        return a_hi, b_lo
    if b_hi < a_lo:
        return a_lo, b_hi
    middle = (max(a_lo, b_lo) + min(a_hi, b_hi)) / 2
    return middle, middle


def closest_points(a: Box, b: Box) -> tuple[Point, Point]:
    """The pair of points, one on each box, whose distance is ``gap(a, b)`` (for drawing the gap)."""
    ax, bx = _closest_on_axis(a.x1, a.x2, b.x1, b.x2)
    ay, by = _closest_on_axis(a.y1, a.y2, b.y1, b.y2)
    return (ax, ay), (bx, by)


SIDES = ("left", "right", "top", "bottom")
# A surface side this close to the image border is where the picture ends, not the table: 2 px, or
# BORDER_SHARE of the picture's width (height) when that is more, since a detector's box of a table
# that runs out of the frame often stops a few pixels short of the border.
BORDER_PX = 2.0
BORDER_SHARE = 0.03


def sides_on_border(surface: Box, width: float, height: float) -> frozenset[str]:
    """The sides of the surface that lie on the image border (the table runs on out of view)."""
    near_x, near_y = max(BORDER_PX, BORDER_SHARE * width), max(BORDER_PX, BORDER_SHARE * height)
    on_border = {
        "left": surface.x1 <= near_x,
        "right": surface.x2 >= width - near_x,
        "top": surface.y1 <= near_y,
        "bottom": surface.y2 >= height - near_y,
    }
    return frozenset(side for side, cut in on_border.items() if cut)


def edge_distances(box: Box, surface: Box, sides: Iterable[str] = SIDES) -> dict[str, float]:
    """Signed distance from each side of the box to the same side of the surface (negative:
    outside), for the surface's ``sides`` (its visible edges)."""
    every = {
        "left": box.x1 - surface.x1,
        "right": surface.x2 - box.x2,
        "top": box.y1 - surface.y1,
        "bottom": surface.y2 - box.y2,
    }
    return {side: every[side] for side in SIDES if side in set(sides)}


def edge_distance(box: Box, surface: Box, sides: Iterable[str] = SIDES) -> float | None:
    """Smallest distance from the box to a visible side of the surface (negative when the box
    sticks out); None when no side is visible."""
    distances = edge_distances(box, surface, sides)
    return min(distances.values()) if distances else None


def nearest_edge(
    box: Box, surface: Box, sides: Iterable[str] = SIDES
) -> tuple[str, Point, Point] | None:
    """The visible surface side nearest to the box, with a point on the box and the matching edge
    point; None when no side is visible."""
    distances = edge_distances(box, surface, sides)
    if not distances:
        return None
    side, _ = min(distances.items(), key=lambda item: item[1])
    cx, cy = box.center
    if side == "left":
        return side, (box.x1, cy), (surface.x1, cy)
    if side == "right":
        return side, (box.x2, cy), (surface.x2, cy)
    if side == "top":
        return side, (cx, box.y1), (cx, surface.y1)
    return side, (cx, box.y2), (cx, surface.y2)


EDGE_BAND = 0.2


def position_label(point: Point, surface: Box) -> str:
    """Where a point sits on the surface: ``center``, an edge, or a corner (outer 20% bands)."""
    rel_x = (point[0] - surface.x1) / surface.width if surface.width else 0.5
    rel_y = (point[1] - surface.y1) / surface.height if surface.height else 0.5
    horizontal = "left" if rel_x < EDGE_BAND else "right" if rel_x > 1 - EDGE_BAND else ""
    vertical = "top" if rel_y < EDGE_BAND else "bottom" if rel_y > 1 - EDGE_BAND else ""
    if horizontal and vertical:
        return f"{vertical}_{horizontal}"
    if horizontal or vertical:
        return f"{horizontal or vertical}_edge"
    return "center"


_AXIS_TOLERANCE = math.tan(math.radians(22.5))


def direction_phrase(dx: float, dy: float) -> str:
    """A move as a person would say it, from the image's point of view: ``"right"``, ``"up and left"``.

    A component smaller than tan(22.5 deg) of the other is left out, so the phrase names the
    nearest of the eight compass directions.
    """
    if dx == 0 and dy == 0:
        return "none"
    horizontal = "right" if dx > 0 else "left"
    vertical = "down" if dy > 0 else "up"
    if abs(dy) <= abs(dx) * _AXIS_TOLERANCE:
        return horizontal
    if abs(dx) <= abs(dy) * _AXIS_TOLERANCE:
        return vertical
    return f"{vertical} and {horizontal}"
