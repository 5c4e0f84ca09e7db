"""The measured scene of one image: detections, the table surface, the scale and every mug's placement.

Pure functions only: detections in, measurements out. Rules (``rules/``) read a ``Scene``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from positioning.geometry import (
    RECT_SIDES,
    Box,
    Edge,
    Point,
    box_corners,
    edge_distance,
    gap,
    is_convex,
    outline_edges,
    position_label,
    sides_on_border,
)
from positioning.plane import Homography, TableFrame

SURFACE_CLASSES = ("dining table",)


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: the single detection type that flows from the detector to the result."""

    id: str
    class_name: str
    class_id: int
    confidence: float
    box: Box


@dataclass(frozen=True, slots=True)
class Scale:
    """Millimetres per pixel, where it came from, and whether it is an estimate."""

    mm_per_px: float | None
    source: str
    approximate: bool

    def to_mm(self, px: float) -> float | None:
        return None if self.mm_per_px is None else px * self.mm_per_px


NO_SCALE = Scale(mm_per_px=None, source="none", approximate=False)


@dataclass(frozen=True, slots=True)
class Surface:
    """The table: its outline in the scene's coordinates (image pixels, or the table plane when
    the job is calibrated), its polygon in normalised image coordinates, how it was found, and
    which of its sides are table edges in view (``cut``: a side on the image border is where the
    picture ends; the table goes on, SPEC 10)."""

    corners: tuple[Point, ...]
    polygon_norm: list[Point]
    source: str
    cut: tuple[bool, ...]
    side_names: tuple[str, ...] | None = None  # RECT_SIDES for a surface drawn as a box

    @property
    def box(self) -> Box:
        """The outline's bounding box (zones and position labels are fractions of it)."""
        return Box.around(self.corners)

    @property
    def edges(self) -> list[Edge]:
        """The table edges in view."""
        every = outline_edges(self.corners, self.side_names)
        names = self.side_names or tuple(f"side {i + 1}" for i in range(len(self.corners)))
        visible = {name for name, cut in zip(names, self.cut, strict=True) if not cut}
        return [edge for edge in every if edge.name in visible]

    @property
    def visible_sides(self) -> frozenset[str]:
        return frozenset(edge.name for edge in self.edges)

    @property
    def is_box(self) -> bool:
        """Whether the outline is its own bounding box (the search then uses the exact box)."""
        return set(self.corners) == set(box_corners(self.box))

    @property
    def convex(self) -> bool:
        return is_convex(self.corners)


@dataclass(frozen=True, slots=True)
class Neighbour:
    detection: Detection
    gap_px: float


@dataclass(frozen=True, slots=True)
class MugPlacement:
    """Where one mug stands on the surface."""

    id: str
    detection: Detection
    mug_score: float | None
    center: Point
    position_label: str
    edge_distance_px: float | None  # to the nearest visible table edge; None: no edge in view
    nearest: list[Neighbour]

    @property
    def box(self) -> Box:
        return self.detection.box


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything measured in one image, ready for rules and for the result."""

    width: int
    height: int
    detections: list[Detection]
    surface: Surface
    scale: Scale
    mugs: list[MugPlacement] = field(default_factory=list)
    # each mug's nearest other mug and the gap to it, measured once (every spacing rule asks)
    nearest_mug: dict[str, tuple[MugPlacement, float]] = field(default_factory=dict)
    # a calibrated scene is measured in the table frame (``positioning.plane``): ``detections``
    # are footprints there, and ``image_boxes`` the detector's boxes in the picture
    frame: TableFrame | None = None
    image_boxes: dict[str, Box] = field(default_factory=dict)
    # the mug candidates the mug check turned down, with their scores: reported, never judged
    rejected: list[tuple[Detection, float | None]] = field(default_factory=list)

    def to_image(self, points: Sequence[Point]) -> list[Point]:
        """Scene points as image pixels (the same points unless the scene is calibrated)."""
        return list(points) if self.frame is None else self.frame.to_image(points)

    def image_box(self, detection: Detection) -> Box:
        return self.image_boxes.get(detection.id, detection.box)

    def objects_of(self, class_name: str) -> list[Detection]:
        return [d for d in self.detections if d.class_name == class_name]


# A reference box's long side over its short side, for the classes the defaults name: a laptop
# (open or shut, from above or in front), a keyboard, a cup. A box outside its range is a
# detection of something else or of a piece of one, and gives no scale.
REFERENCE_ASPECTS = {"laptop": (1.0, 3.0), "keyboard": (2.0, 8.0), "cup": (1.0, 2.0)}
# ... and one smaller than this share of the picture's long side is too few pixels to measure by
MIN_REFERENCE_SHARE = 0.03


def plausible_reference(detection: Detection, image_long_side: float | None) -> bool:
    """Whether a box can give the scale: its aspect fits its class, and it is not a speck."""
    long_side = max(detection.box.width, detection.box.height)
    short_side = min(detection.box.width, detection.box.height)
    if long_side <= 0 or short_side <= 0:
        return False
    low, high = REFERENCE_ASPECTS.get(detection.class_name, (1.0, float("inf")))
    if not low <= long_side / short_side <= high:
        return False
    return image_long_side is None or long_side >= MIN_REFERENCE_SHARE * image_long_side


def resolve_scale(
    detections: Sequence[Detection],
    *,
    mm_per_px: float | None,
    reference: tuple[str, float] | None,
    default_references: Mapping[str, float],
    image_long_side: float | None = None,
    rejected: Collection[str] = (),
) -> Scale:
    """SPEC 3 ``scale``: the given mm/px; else a reference object of known width; else none.

    A reference object's real width is matched to the longer side of its box (the box of a laptop
    seen at an angle is still longest along its real width); the result is marked approximate.
    Only a plausible box is used (``plausible_reference``), never a detection in ``rejected``
    (ids of mug candidates the mug check turned down: SPEC 10); the most confident such box of the
    first class found gives the scale.
    """
    if mm_per_px is not None:
        return Scale(mm_per_px=mm_per_px, source="input", approximate=False)
    candidates: Iterable[tuple[str, float]] = (
        [reference] if reference is not None else default_references.items()
    )
    for class_name, width_mm in candidates:
        found = [
            d
            for d in detections
            if d.class_name == class_name
            and d.id not in rejected
            and plausible_reference(d, image_long_side)
        ]
        if not found:
            continue
        best = max(found, key=lambda d: d.confidence)
        return Scale(
            mm_per_px=width_mm / max(best.box.width, best.box.height),
            source=f"reference:{class_name}",
            approximate=True,
        )
    return NO_SCALE


def resolve_surface(
    detections: Sequence[Detection],
    width: int,
    height: int,
    polygon_norm: Sequence[Point] | None,
    mugs: Sequence[Detection] = (),
) -> Surface:
    """SPEC 3 ``surface``: the given polygon; else the detected table; else the whole image.

    Table boxes that overlap are one table (a table that runs out of the picture is often found
    in overlapping pieces, and one piece alone would put mugs standing on it over its edge). Of
    several tables apart, the surface is the one that holds the most mugs (their centres), the
    one with the largest piece when that ties (SPEC 10: the table that holds the mugs).
    """
    if polygon_norm:
        corners = tuple((x * width, y * height) for x, y in polygon_norm)
        cut = sides_on_border(corners, width, height)
        return Surface(corners, list(polygon_norm), "input", cut)
    tables = [d for d in detections if d.class_name in SURFACE_CLASSES]
    if tables:
        table, box = max(
            _tables(tables),
            key=lambda piece: (
                sum(_holds(piece[1], m.box.center) for m in mugs),
                piece[0].box.area,
            ),
        )
        polygon = _box_polygon(box, width, height)
        return _in_view(box, polygon, f"detected:{table.class_name}", width, height)
    whole = Box(0.0, 0.0, float(width), float(height))
    return _in_view(whole, _box_polygon(whole, width, height), "image", width, height)


def _in_view(box: Box, polygon: list[Point], source: str, width: int, height: int) -> Surface:
    """A box surface, with its sides on the image border taken out of its edges."""
    corners = box_corners(box)
    return Surface(corners, polygon, source, sides_on_border(corners, width, height), RECT_SIDES)


def _tables(pieces: Sequence[Detection]) -> list[tuple[Detection, Box]]:
    """Table boxes grouped into tables (a piece that overlaps a table, or the growing union of
    one, is part of it), largest piece first: each table's largest piece and its whole box."""
    left = sorted(pieces, key=lambda d: -d.box.area)
    tables = []
    while left:
        largest = left.pop(0)
        box = largest.box
        grown = True
        while grown:
            grown = False
            for other in list(left):
                if box.overlaps(other.box):
                    box = box.union(other.box)
                    left.remove(other)
                    grown = True
        tables.append((largest, box))
    return tables


def _holds(box: Box, point: Point) -> bool:
    return box.x1 <= point[0] <= box.x2 and box.y1 <= point[1] <= box.y2


def _box_polygon(box: Box, width: int, height: int) -> list[Point]:
    x1, y1, x2, y2 = box.normalised(width, height)
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def place_mugs(
    mugs: Sequence[tuple[Detection, float | None]],
    detections: Sequence[Detection],
    surface: Surface,
) -> list[MugPlacement]:
    """Measure each mug: centre, position label, edge distance and the nearest object of each class.

    Mugs are numbered ``m1, m2, ...`` from left to right so a person can find them in the picture.
    Surface detections (the table itself) are not neighbours: every mug stands on them.
    """
    ordered = sorted(mugs, key=lambda item: (item[0].box.center[0], item[0].box.center[1]))
    others = [d for d in detections if d.class_name not in SURFACE_CLASSES]
    placements = []
    for index, (detection, mug_score) in enumerate(ordered, start=1):
        placements.append(
            MugPlacement(
                id=f"m{index}",
                detection=detection,
                mug_score=mug_score,
                center=detection.box.center,
                position_label=position_label(detection.box.center, surface.box),
                edge_distance_px=edge_distance(detection.box, surface.edges),
                nearest=_nearest_per_class(detection, others),
            )
        )
    return placements


def _nearest_per_class(mug: Detection, others: Sequence[Detection]) -> list[Neighbour]:
    nearest: dict[str, Neighbour] = {}
    for other in others:
        if other.id == mug.id:
            continue
        candidate = Neighbour(other, gap(mug.box, other.box))
        current = nearest.get(other.class_name)
        if current is None or candidate.gap_px < current.gap_px:
            nearest[other.class_name] = candidate
    return sorted(nearest.values(), key=lambda n: (n.gap_px, n.detection.class_name))


def build_scene(
    width: int,
    height: int,
    detections: Sequence[Detection],
    mugs: Sequence[tuple[Detection, float | None]],
    *,
    polygon_norm: Sequence[Point] | None = None,
    mm_per_px: float | None = None,
    reference: tuple[str, float] | None = None,
    default_references: Mapping[str, float] | None = None,
    rejected: Sequence[tuple[Detection, float | None]] = (),
    homography: Homography | None = None,
) -> Scene:
    """Measure one image from its detections and the mugs that passed the mug check
    (``rejected``: the candidates that did not, with their scores); on the table plane when a calibration
    gives its ``homography`` (in the frame with the image's scale and directions at the surface's
    centre)."""
    surface = resolve_surface(detections, width, height, polygon_norm, [mug for mug, _ in mugs])
    if homography is not None:
        frame = TableFrame.at(homography, surface.box.center, (width, height))
        return _on_plane(width, height, detections, mugs, surface, frame, rejected)
    scale = resolve_scale(
        detections,
        mm_per_px=mm_per_px,
        reference=reference,
        default_references=default_references or {},
        image_long_side=max(width, height),
        rejected={detection.id for detection, _ in rejected},
    )
    placed = place_mugs(mugs, detections, surface)
    return Scene(
        width=width,
        height=height,
        detections=list(detections),
        surface=surface,
        scale=scale,
        mugs=placed,
        nearest_mug=_nearest_mugs(placed),
        rejected=list(rejected),
    )


def _on_plane(
    width: int,
    height: int,
    detections: Sequence[Detection],
    mugs: Sequence[tuple[Detection, float | None]],
    surface: Surface,
    frame: TableFrame,
    rejected: Sequence[tuple[Detection, float | None]],
) -> Scene:
    """The scene in the table frame: every object by its footprint, the surface by its outline
    on the table (a given polygon's corners; a table box's footprint), the scale exact."""
    standing = {
        d.id: replace(d, box=Box.around(frame.footprint(d.box, d.class_name)))
        for d in detections
        if d.class_name not in SURFACE_CLASSES
    }
    on_plane = [standing.get(d.id, d) for d in detections]
    if surface.source == "input":
        bottom = (width / 2, float(height))
        pulled = [frame.pull_in(p, bottom) for p in surface.corners]
        outline = replace(surface, corners=tuple(frame.to_frame(pulled)))
    else:
        corners = frame.footprint(_pulled_in(surface.box, frame, width, height), None)
        outline = replace(surface, corners=tuple(corners))
    placed = place_mugs([(standing.get(m.id, m), score) for m, score in mugs], on_plane, outline)
    return Scene(
        width=width,
        height=height,
        detections=on_plane,
        surface=outline,
        scale=Scale(frame.mm_per_frame_px, frame.homography.source, approximate=False),
        mugs=placed,
        nearest_mug=_nearest_mugs(placed),
        frame=frame,
        image_boxes={d.id: d.box for d in detections},
        rejected=list(rejected),
    )


def _pulled_in(box: Box, frame: TableFrame, width: int, height: int) -> Box:
    """A surface box whose top lies beyond the horizon (the whole picture of a slanted view) cut
    down to where the table is still in front of the camera."""
    top = frame.pull_in(((box.x1 + box.x2) / 2, box.y1), ((box.x1 + box.x2) / 2, box.y2))
    return Box(box.x1, min(top[1], box.y2), box.x2, box.y2)


def _nearest_mugs(mugs: Sequence[MugPlacement]) -> dict[str, tuple[MugPlacement, float]]:
    nearest: dict[str, tuple[MugPlacement, float]] = {}
    for mug in mugs:
        others = [(other, gap(mug.box, other.box)) for other in mugs if other.id != mug.id]
        if others:
            nearest[mug.id] = min(others, key=lambda pair: pair[1])
    return nearest
