"""Pure 2-D geometry on axis-aligned boxes in image pixels (origin top-left, x right, y down)."""

from __future__ import annotations

import math
from collections.abc import Sequence
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

    @classmethod
    def around(cls, points: Sequence[Point]) -> Box:
        """The smallest box holding the points."""
        xs, ys = [x for x, _ in points], [y for _, y in points]
        return cls(min(xs), min(ys), max(xs), max(ys))

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


# The sides of ``box_corners`` in order: a surface outline names side i from corner i to i + 1.
RECT_SIDES = ("top", "right", "bottom", "left")
# A surface side this close to the image border is where the picture ends, not the table: 2 px, or
# BORDER_SHARE of the picture's width (height) when that is more, since a detector's box of a table
# that runs out of the frame often stops a few pixels short of the border.
BORDER_PX = 2.0
BORDER_SHARE = 0.03


def box_corners(box: Box) -> tuple[Point, ...]:
    """The box as an outline: top left, top right, bottom right, bottom left."""
    return ((box.x1, box.y1), (box.x2, box.y1), (box.x2, box.y2), (box.x1, box.y2))


def sides_on_border(corners: Sequence[Point], width: float, height: float) -> tuple[bool, ...]:
    """For each side of the outline (corner i to i + 1), whether it lies on the image border:
    both its ends near the same border (the table runs on out of view there)."""
    near_x, near_y = max(BORDER_PX, BORDER_SHARE * width), max(BORDER_PX, BORDER_SHARE * height)

    def borders(p: Point) -> set[str]:
        found = set()
        if p[0] <= near_x:
            found.add("left")
        if p[0] >= width - near_x:
            found.add("right")
        if p[1] <= near_y:
            found.add("top")
        if p[1] >= height - near_y:
            found.add("bottom")
        return found

    ends = list(zip(corners, [*corners[1:], corners[0]], strict=True))
    return tuple(bool(borders(a) & borders(b)) for a, b in ends)


def signed_area(corners: Sequence[Point]) -> float:
    """The outline's area, positive when its corners run clockwise on screen (y down)."""
    ends = zip(corners, [*corners[1:], corners[0]], strict=True)
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in ends) / 2


def is_convex(corners: Sequence[Point]) -> bool:
    """Whether the outline turns the same way at every corner (no side bends inwards)."""
    n, turns = len(corners), set()
    for i in range(n):
        (ax, ay), (bx, by), (cx, cy) = corners[i], corners[(i + 1) % n], corners[(i + 2) % n]
        cross = (bx - ax) * (cy - by) - (by - ay) * (cx - bx)
        if abs(cross) > 1e-9:
            turns.add(cross > 0)
    return len(turns) <= 1


@dataclass(frozen=True, slots=True)
class Edge:
    """One side of a surface outline, from ``a`` to ``b``, with its unit normal into the surface."""

    name: str
    a: Point
    b: Point
    normal: Point
    convex: bool = True  # the outline it belongs to turns one way only (no side bends inwards)

    @property
    def length(self) -> float:
        return math.dist(self.a, self.b)


def outline_edges(corners: Sequence[Point], names: Sequence[str] | None = None) -> list[Edge]:
    """Every side of the outline as an edge (zero-length sides left out)."""
    inwards = 1.0 if signed_area(corners) >= 0 else -1.0
    convex = is_convex(corners)
    edges = []
    for index, (a, b) in enumerate(zip(corners, [*corners[1:], corners[0]], strict=True)):
        length = math.dist(a, b)
        if length == 0:
            continue
        tx, ty = (b[0] - a[0]) / length, (b[1] - a[1]) / length
        name = names[index] if names is not None else f"side {index + 1}"
        edges.append(Edge(name, a, b, (-ty * inwards, tx * inwards), convex))
    return edges


def edge_gap(box: Box, edge: Edge) -> float:
    """Signed distance from the box to a table edge: how far the box stays in from the edge's
    line (negative: it reaches over). Where the box lies beyond either end of the edge, its plain
    distance from the edge, unless it reaches over the line of a convex outline's edge (then it
    is outside the table, past a corner)."""
    corners = box_corners(box)
    (ax, ay), (nx, ny) = edge.a, edge.normal
    tx, ty = ny, -nx  # along the edge, one way or the other
    along = [(x - ax) * tx + (y - ay) * ty for x, y in corners]
    low, high = sorted((0.0, (edge.b[0] - ax) * tx + (edge.b[1] - ay) * ty))
    inward = min((x - ax) * nx + (y - ay) * ny for x, y in corners)
    if (max(along) >= low and min(along) <= high) or (edge.convex and inward < 0):
        return inward
    return min(
        [_segment_point_distance(p, edge.a, edge.b) for p in corners]
        + [_box_point_distance(box, edge.a), _box_point_distance(box, edge.b)]
    )


def edge_distance(box: Box, edges: Sequence[Edge]) -> float | None:
    """Smallest distance from the box to a visible table edge (negative when the box sticks out);
    None when no edge is in view."""
    return min((edge_gap(box, edge) for edge in edges), default=None)


def nearest_edge(box: Box, edges: Sequence[Edge]) -> tuple[str, Point, Point] | None:
    """The visible table edge nearest to the box, with the point of the box facing it and the
    matching point of the edge; None when no edge is in view."""
    if not edges:
        return None
    edge = min(edges, key=lambda e: edge_gap(box, e))
    (cx, cy), (nx, ny) = box.center, edge.normal
    reach = box.width / 2 * abs(nx) + box.height / 2 * abs(ny)
    on_box = (cx - reach * nx, cy - reach * ny)
    return edge.name, on_box, _project(box.center, edge.a, edge.b)


def _project(p: Point, a: Point, b: Point) -> Point:
    abx, aby = b[0] - a[0], b[1] - a[1]
    length_sq = abx * abx + aby * aby
    t = max(0.0, min(1.0, ((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / length_sq))
    return (a[0] + t * abx, a[1] + t * aby)


def _segment_point_distance(p: Point, a: Point, b: Point) -> float:
    return math.dist(p, _project(p, a, b))


def _box_point_distance(box: Box, p: Point) -> float:
    return math.hypot(
        max(box.x1 - p[0], 0.0, p[0] - box.x2), max(box.y1 - p[1], 0.0, p[1] - box.y2)
    )


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
