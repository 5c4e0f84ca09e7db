"""Regions of the plane and the nearest point that satisfies a set of inside/outside constraints.

Placement rules become constraints on where a mug's *centre* may be (SPEC 4.2):

- "at least d from an object" -> outside the object's box grown by half the mug's size and rounded
  by d (a rounded rectangle: the points whose gap to the object would be under d);
- "within d of an object" -> inside such a rounded rectangle (of any object of the class);
- "d from the table edge" / "on the table" -> inside the surface box shrunk by the half size + d;
- a zone -> inside or outside a polygon.

Every region has a signed distance (negative inside). The nearest feasible point to a start point
is exact: it is the start itself, or lies on the boundary of the feasible set, where it is either
the projection of the start onto one boundary piece, a piece's end, or a crossing of two pieces.
All of those candidates are tried and the nearest feasible one wins. Constraints hold with a small
``margin`` so a reported move still passes after rounding to 0.01 px.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Protocol

from positioning.geometry import Point

MARGIN = 0.01
_EPS = 1e-9
# Region tests one analysis may spend on the placement search (about two seconds of CPU): the
# search is exact, but crowded scenes make it grow with the cube of the mugs.
PLACEMENT_CHECKS = 10_000_000


class SearchBudgetExhausted(Exception):
    """The analysis spent its placement budget; the mugs not yet placed stay unsearched."""


@dataclass
class SearchBudget:
    """How many region tests are left; every feasibility check of every mug draws on it, and so
    do building the constraints, the candidate points and the crossings of pieces."""

    checks: int = field(default_factory=lambda: PLACEMENT_CHECKS)

    def spend(self, checks: int) -> None:
        self.checks -= checks
        if self.checks < 0:
            raise SearchBudgetExhausted


@dataclass(frozen=True, slots=True)
class Segment:
    a: Point
    b: Point


@dataclass(frozen=True, slots=True)
class Circle:
    center: Point
    radius: float


Piece = Segment | Circle


class Region(Protocol):
    def signed_distance(self, p: Point) -> float:
        """Negative inside, zero on the boundary, positive outside."""
        ...

    def pieces(self, offset: float) -> list[Piece]:
        """Segments and circles that contain the level set ``signed_distance == offset``."""
        ...


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle; empty when ``x1 > x2`` or ``y1 > y2`` (a margin too large)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def empty(self) -> bool:
        return self.x1 > self.x2 or self.y1 > self.y2

    def grow(self, dx: float, dy: float) -> Rect:
        return Rect(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def signed_distance(self, p: Point) -> float:
        if self.empty:
            return math.inf
        dx = max(self.x1 - p[0], 0.0, p[0] - self.x2)
        dy = max(self.y1 - p[1], 0.0, p[1] - self.y2)
        if dx > 0 or dy > 0:
            return math.hypot(dx, dy)
        return -min(p[0] - self.x1, self.x2 - p[0], p[1] - self.y1, self.y2 - p[1])

    def pieces(self, offset: float) -> list[Piece]:
        if offset < 0:
            return _rect_edges(self.grow(offset, offset))
        return RoundedRect(self, offset).pieces(0.0)


@dataclass(frozen=True, slots=True)
class RoundedRect:
    """The points within ``radius`` of a rectangle."""

    core: Rect
    radius: float

    def signed_distance(self, p: Point) -> float:
        return self.core.signed_distance(p) - self.radius

    def pieces(self, offset: float) -> list[Piece]:
        radius = self.radius + offset
        if radius < 0:
            return self.core.pieces(radius)
        core = self.core
        if core.empty:
            return []
        (x1, y1), (x2, y2) = (core.x1, core.y1), (core.x2, core.y2)
        if radius == 0:
            return _rect_edges(core)
        return [
            Segment((x1, y1 - radius), (x2, y1 - radius)),
            Segment((x2 + radius, y1), (x2 + radius, y2)),
            Segment((x2, y2 + radius), (x1, y2 + radius)),
            Segment((x1 - radius, y2), (x1 - radius, y1)),
            *(Circle(corner, radius) for corner in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))),
        ]


@dataclass(frozen=True, slots=True)
class Polygon:
    """A simple polygon (convex or not); its boundary counts as inside."""

    points: tuple[Point, ...]

    def _edges(self) -> Iterable[tuple[Point, Point]]:
        return zip(self.points, self.points[1:] + self.points[:1], strict=True)

    def signed_distance(self, p: Point) -> float:
        distance = min(_segment_distance(p, a, b) for a, b in self._edges())
        return -distance if self._contains(p) else distance

    def _contains(self, p: Point) -> bool:
        inside = False
        x, y = p
        for (ax, ay), (bx, by) in self._edges():
            if (ay > y) != (by > y):
                crossing = ax + (y - ay) * (bx - ax) / (by - ay)
                if x < crossing:
                    inside = not inside
        return inside

    def pieces(self, offset: float) -> list[Piece]:
        """Each edge shifted by ``offset`` to both sides, and a circle round each vertex.

        A superset of the offset curve (only some of these pieces belong to it), which is all
        the nearest-point search needs: extra candidates are checked and dropped.
        """
        pieces: list[Piece] = []
        for a, b in self._edges():
            length = math.dist(a, b)
            if length == 0:
                continue
            nx, ny = (b[1] - a[1]) / length * offset, (a[0] - b[0]) / length * offset
            pieces.append(Segment((a[0] + nx, a[1] + ny), (b[0] + nx, b[1] + ny)))
            if offset:
                pieces.append(Segment((a[0] - nx, a[1] - ny), (b[0] - nx, b[1] - ny)))
        if offset:
            pieces.extend(Circle(p, abs(offset)) for p in self.points)
        return pieces


@dataclass(frozen=True, slots=True)
class HalfPlane:
    """The points at least ``depth`` in from a line through ``point``, on the side ``normal``
    (a unit vector) points to. ``reach`` bounds the stretch of the line the search needs: the
    boundary is a segment that long either side of ``point``."""

    point: Point
    normal: Point
    depth: float
    reach: float

    def signed_distance(self, p: Point) -> float:
        return self.depth - (
            (p[0] - self.point[0]) * self.normal[0] + (p[1] - self.point[1]) * self.normal[1]
        )

    def pieces(self, offset: float) -> list[Piece]:
        (px, py), (nx, ny) = self.point, self.normal
        shift, reach = self.depth - offset, self.reach
        mx, my = px + shift * nx, py + shift * ny
        return [Segment((mx - reach * ny, my + reach * nx), (mx + reach * ny, my - reach * nx))]


@dataclass(frozen=True, slots=True)
class Inset:
    """The points at least ``by`` inside another region."""

    region: Region
    by: float

    def signed_distance(self, p: Point) -> float:
        return self.region.signed_distance(p) + self.by

    def pieces(self, offset: float) -> list[Piece]:
        return self.region.pieces(offset - self.by)


@dataclass(frozen=True, slots=True)
class Constraint:
    """The point must be inside at least one of the regions (``inside``), or outside all of them."""

    regions: tuple[Region, ...]
    inside: bool

    def satisfied(self, p: Point, margin: float = 0.0) -> bool:
        """Stops at the first region that decides (the check runs for many candidate points)."""
        limit = margin - _EPS
        if self.inside:
            return any(-r.signed_distance(p) >= limit for r in self.regions)
        return all(r.signed_distance(p) >= limit for r in self.regions)

    def pieces(self, margin: float) -> list[Piece]:
        offset = -margin if self.inside else margin
        return [piece for region in self.regions for piece in region.pieces(offset)]


def nearest_feasible(
    start: Point,
    constraints: Sequence[Constraint],
    margin: float = MARGIN,
    budget: SearchBudget | None = None,
) -> Point | None:
    """The point nearest to ``start`` that satisfies every constraint (by ``margin``), or None.

    Raises ``SearchBudgetExhausted`` when ``budget`` runs out first.
    """
    if any(c.inside and not c.regions for c in constraints):
        return None
    budget = budget or SearchBudget()
    cost = sum(len(c.regions) for c in constraints)

    def feasible(point: Point) -> bool:
        budget.spend(cost)
        return all(c.satisfied(point, margin) for c in constraints)

    if feasible(start):
        return start
    pieces = [piece for c in constraints for piece in c.pieces(margin)]
    budget.spend(3 * len(pieces))  # the projections below, ranked
    # Candidates are tried nearest first, so the first feasible one is the answer. Projections
    # onto single pieces are cheap and usually decide; a piece farther away than the best found so
    # far cannot hold a nearer crossing, so only the pieces within that distance are crossed.
    best = _first_feasible(
        start, (p for piece in pieces for p in _closest_on_piece(start, piece)), feasible
    )
    reach = math.dist(start, best) if best is not None else _ring_bound(start, pieces, feasible)
    near = [piece for piece in pieces if _piece_distance(start, piece) <= reach]
    budget.spend(len(near) * (len(near) - 1))  # every pair crossed (up to two points each), ranked
    crossing = _first_feasible(
        start,
        (p for a, b in combinations(near, 2) for p in _crossings(a, b)),
        feasible,
        within=reach,
    )
    return crossing if crossing is not None else best


def _ring_bound(start: Point, pieces: Sequence[Piece], feasible: Callable[[Point], bool]) -> float:
    """An upper bound on the distance to the nearest feasible point, from rings of samples.

    Only needed in crowded scenes where no single projection is feasible; it keeps the pairwise
    crossings to the pieces near the start instead of all of them.
    """
    extent = max((_piece_distance(start, piece) for piece in pieces), default=0.0)
    if not math.isfinite(extent):
        return math.inf
    radius, step = 4.0, 4.0
    while radius <= 2 * extent + step:
        for k in range(64):
            angle = 2 * math.pi * k / 64
            point = (start[0] + radius * math.cos(angle), start[1] + radius * math.sin(angle))
            if feasible(point):
                return radius
        radius += step
        step *= 1.25
    return math.inf


def _first_feasible(
    start: Point,
    candidates: Iterable[Point],
    feasible: Callable[[Point], bool],
    within: float = math.inf,
) -> Point | None:
    ranked = sorted((distance, p) for p in candidates if (distance := math.dist(start, p)) < within)
    return next((p for _, p in ranked if feasible(p)), None)


def _piece_distance(p: Point, piece: Piece) -> float:
    if isinstance(piece, Segment):
        return _segment_distance(p, piece.a, piece.b)
    return abs(math.dist(p, piece.center) - piece.radius)


def _closest_on_piece(p: Point, piece: Piece) -> list[Point]:
    if isinstance(piece, Segment):
        return [_project_on_segment(p, piece.a, piece.b), piece.a, piece.b]
    (cx, cy), radius = piece.center, piece.radius
    distance = math.dist(p, piece.center)
    if distance < _EPS:
        return [(cx + radius, cy)]
    return [(cx + (p[0] - cx) / distance * radius, cy + (p[1] - cy) / distance * radius)]


def _project_on_segment(p: Point, a: Point, b: Point) -> Point:
    abx, aby = b[0] - a[0], b[1] - a[1]
    length_sq = abx * abx + aby * aby
    if length_sq == 0:
        return a
    t = max(0.0, min(1.0, ((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / length_sq))
    return (a[0] + t * abx, a[1] + t * aby)


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    return math.dist(p, _project_on_segment(p, a, b))


def _crossings(first: Piece, second: Piece) -> list[Point]:
    if isinstance(first, Segment) and isinstance(second, Segment):
        return _segment_segment(first, second)
    if isinstance(first, Circle) and isinstance(second, Circle):
        return _circle_circle(first, second)
    segment, circle = (first, second) if isinstance(first, Segment) else (second, first)
    assert isinstance(segment, Segment) and isinstance(circle, Circle)
    return _segment_circle(segment, circle)


def _segment_segment(s: Segment, t: Segment) -> list[Point]:
    (ax, ay), (bx, by) = s.a, s.b
    (cx, cy), (dx, dy) = t.a, t.b
    rx, ry, qx, qy = bx - ax, by - ay, dx - cx, dy - cy
    denominator = rx * qy - ry * qx
    if abs(denominator) < _EPS:
        return []
    u = ((cx - ax) * qy - (cy - ay) * qx) / denominator
    v = ((cx - ax) * ry - (cy - ay) * rx) / denominator
    if -_EPS <= u <= 1 + _EPS and -_EPS <= v <= 1 + _EPS:
        return [(ax + u * rx, ay + u * ry)]
    return []


def _segment_circle(s: Segment, c: Circle) -> list[Point]:
    (ax, ay), (bx, by) = s.a, s.b
    (cx, cy), radius = c.center, c.radius
    dx, dy = bx - ax, by - ay
    fx, fy = ax - cx, ay - cy
    a = dx * dx + dy * dy
    if a == 0:
        return []
    b = 2 * (fx * dx + fy * dy)
    discriminant = b * b - 4 * a * (fx * fx + fy * fy - radius * radius)
    if discriminant < 0:
        return []
    root = math.sqrt(discriminant)
    points = []
    for t in ((-b - root) / (2 * a), (-b + root) / (2 * a)):
        if -_EPS <= t <= 1 + _EPS:
            points.append((ax + t * dx, ay + t * dy))
    return points


def _circle_circle(c1: Circle, c2: Circle) -> list[Point]:
    distance = math.dist(c1.center, c2.center)
    if distance < _EPS or distance > c1.radius + c2.radius or distance < abs(c1.radius - c2.radius):
        return []
    along = (c1.radius**2 - c2.radius**2 + distance**2) / (2 * distance)
    height = math.sqrt(max(0.0, c1.radius**2 - along**2))
    (x1, y1), (x2, y2) = c1.center, c2.center
    mx, my = x1 + along * (x2 - x1) / distance, y1 + along * (y2 - y1) / distance
    ox, oy = height * (y2 - y1) / distance, height * (x2 - x1) / distance
    return [(mx + ox, my - oy), (mx - ox, my + oy)]


def _rect_edges(rect: Rect) -> list[Piece]:
    if rect.empty:
        return []
    a, b = (rect.x1, rect.y1), (rect.x2, rect.y1)
    c, d = (rect.x2, rect.y2), (rect.x1, rect.y2)
    return [Segment(a, b), Segment(b, c), Segment(c, d), Segment(d, a)]
