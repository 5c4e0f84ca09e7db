"""Generated desk photos with exact labels and the verdict the rules should reach.

``generate_scene(seed, index)`` draws everything from ``numpy.random.default_rng([seed, index])``,
so one (seed, index) always gives the same image bytes, labels and truth, in any process and in any
order. A scene is a table (its edges in view or not), objects placed at real sizes in millimetres,
seen by a pinhole camera from straight above (one scale over the table) or at a slant (the scale
changes across the image; the truth gives it at the table centre).

Placement mixes free spots with spots chosen to test the rules: mugs close to laptops, keyboards
and phones, near the table edge and near each other, so verdicts come out mixed; boxes of objects
may touch but one never hides much of another.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw

from positioning.geometry import BORDER_PX, BORDER_SHARE
from training.synthetic.camera import Array, Camera
from training.synthetic.objects import (
    LOOKALIKES,
    Block,
    Book,
    Cable,
    Coaster,
    Keyboard,
    Laptop,
    Marker,
    Mug,
    Paper,
    Phone,
    Thing,
)
from training.synthetic.render import Painter, photo_finish, polygon_gap, rect, scaled
from training.synthetic.textures import floor, table_top, texture_image
from training.synthetic.truth import (
    FIXED_RULES,
    TABLE_CLASS,
    LabelBox,
    expected_verdicts,
    plane_truth,
)

GENERATOR = "synthetic-desks/1"
View = Literal["top", "slanted"]
ViewChoice = Literal["mixed", "top", "slanted"]
ASPECTS = ((4 / 3, 0.4), (3 / 2, 0.2), (16 / 9, 0.15), (1.0, 0.1), (3 / 4, 0.15))
MAX_VIEW_MM = 2000.0  # keeps a mug above ~15 px at 320 px input
GAP_MM = 4.0
MAX_HIDDEN = 0.3  # the most of a thing's box another thing in front of it may cover


@dataclass(frozen=True)
class SceneOptions:
    widths: tuple[int, int] = (480, 1280)
    view: ViewChoice = "mixed"
    marker: bool = False  # an ArUco marker lying on the table, clear of everything (SPEC 10)


@dataclass(frozen=True)
class Setting:
    """The table, the camera looking at it and the light."""

    view: View
    camera: Camera
    table: tuple[float, float]
    table_height: float
    light: Array

    @staticmethod
    def corners_of(table: tuple[float, float]) -> Array:
        w, d = table
        return np.array([(0.0, 0.0, 0.0), (w, 0.0, 0.0), (w, d, 0.0), (0.0, d, 0.0)])

    @property
    def corners(self) -> Array:
        return self.corners_of(self.table)

    def surface_box(self) -> tuple[float, float, float, float]:
        return _clip_box(_bounds(self.camera.project(self.corners)), self.camera.size)


@dataclass(frozen=True)
class GeneratedScene:
    image: Image.Image
    labels: list[LabelBox]
    truth: dict[str, Any]
    jpeg_quality: int

    def jpeg(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="JPEG", quality=self.jpeg_quality)
        return buffer.getvalue()

    def yolo_labels(self) -> str:
        width, height = self.image.size
        return "".join(label.yolo_line(width, height) + "\n" for label in self.labels)


@dataclass(frozen=True)
class Composition:
    """A scene before it is drawn: the setting, what stands where, and the random state at which
    drawing starts (so the same scene can be drawn again, e.g. without its mugs, pixel for pixel
    alike elsewhere)."""

    seed: int
    index: int
    setting: Setting
    things: tuple[Thing, ...]
    render_state: dict[str, Any]


def compose(seed: int, index: int = 0, options: SceneOptions | None = None) -> Composition:
    """Choose the camera, the table and every object's place for scene ``index`` of ``seed``."""
    rng = np.random.default_rng([seed, index])
    options = options or SceneOptions()
    setting = _setting(rng, options)
    things = tuple(_Layout(setting, rng, marker=options.marker).fill())
    return Composition(seed, index, setting, things, dict(rng.bit_generator.state))


def render(
    composition: Composition, things: Sequence[Thing] | None = None
) -> tuple[Image.Image, int]:
    """Draw the composition (or the same scene with only ``things``); returns the image and the
    JPEG quality it is to be saved at."""
    rng = np.random.default_rng()
    rng.bit_generator.state = composition.render_state
    chosen = list(composition.things if things is None else things)
    image = _render(composition.setting, chosen, rng)
    return image, int(rng.integers(70, 96))


def labels_of(composition: Composition) -> list[LabelBox]:
    """The labelled boxes of a composition's things and table, in the picture's pixels."""
    return _labels(composition.setting, composition.things)


def generate_scene(
    seed: int, index: int = 0, options: SceneOptions | None = None
) -> GeneratedScene:
    """One scene, fully determined by ``(seed, index)`` and the options."""
    composition = compose(seed, index, options)
    image, quality = render(composition)
    labels = _labels(composition.setting, composition.things)
    truth = _truth(composition.setting, composition.things, labels, seed, index)
    return GeneratedScene(image=image, labels=labels, truth=truth, jpeg_quality=quality)


# ------------------------------------------------------------------ camera and table


def _setting(rng: np.random.Generator, options: SceneOptions) -> Setting:
    width = int(rng.integers(options.widths[0], options.widths[1] + 1))
    aspects, weights = zip(*ASPECTS, strict=True)
    height = round(width / aspects[rng.choice(len(aspects), p=weights)])
    view: View = (
        options.view if options.view != "mixed" else ("top" if rng.random() < 0.5 else "slanted")
    )
    table = (float(rng.uniform(1000, 1700)), float(rng.uniform(600, 900)))
    whole = bool(rng.random() < 0.45)
    if whole:
        seen = table[0] * rng.uniform(1.1, 1.4)
        target = (table[0] / 2 + rng.uniform(-0.05, 0.05) * table[0], table[1] / 2)
    else:
        seen = table[0] * rng.uniform(0.45, 0.9)
        target = (table[0] * rng.uniform(0.25, 0.75), table[1] * rng.uniform(0.25, 0.75))
    hfov = float(rng.uniform(50, 70))
    focal = width / (2 * math.tan(math.radians(hfov) / 2))
    distance = focal * min(seen, MAX_VIEW_MM) / width
    pitch = 0.0 if view == "top" else float(rng.uniform(20, 45))
    yaw = 0.0 if rng.random() < 0.6 else float(rng.uniform(-10, 10))

    def camera_at(distance: float) -> Camera:
        return Camera.looking_at(
            width,
            height,
            hfov_deg=hfov,
            target=target,
            distance=distance,
            pitch_deg=pitch,
            yaw_deg=yaw,
        )

    camera = camera_at(distance)
    corners = Setting.corners_of(table)
    for _ in range(12):
        if not whole or _inside(_bounds(camera.project(corners)), camera.size, 0):
            break
        distance *= 1.08
        camera = camera_at(distance)
    azimuth, elevation = (
        rng.uniform(0, 2 * math.pi),
        rng.uniform(math.radians(40), math.radians(75)),
    )
    light = np.array(
        [
            math.cos(azimuth) * math.cos(elevation),
            math.sin(azimuth) * math.cos(elevation),
            math.sin(elevation),
        ]
    )
    return Setting(
        view=view,
        camera=camera,
        table=table,
        table_height=float(rng.uniform(720, 760)),
        light=light,
    )


def _bounds(points: Array) -> tuple[float, float, float, float]:
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def _clip_box(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[float, float, float, float]:
    width, height = size
    x1, y1, x2, y2 = box
    return (
        round(min(max(x1, 0.0), width), 2),
        round(min(max(y1, 0.0), height), 2),
        round(min(max(x2, 0.0), width), 2),
        round(min(max(y2, 0.0), height), 2),
    )


def _inside(box: tuple[float, float, float, float], size: tuple[int, int], margin: float) -> bool:
    x1, y1, x2, y2 = box
    return x1 >= margin and y1 >= margin and x2 <= size[0] - margin and y2 <= size[1] - margin


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _area(box: tuple[float, ...]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


# ------------------------------------------------------------------ layout

Spot = Callable[[], tuple[tuple[float, float], float]]


class _Layout:
    """Places things one by one on free spots of the visible table; a thing that fits nowhere is
    left out rather than forced."""

    def __init__(self, setting: Setting, rng: np.random.Generator, marker: bool = False) -> None:
        self.marker = marker
        self.setting = setting
        self.rng = rng
        self.camera = setting.camera
        self.placed: list[_Placed] = []
        self.surface = setting.surface_box()

    def fill(self) -> list[Thing]:
        rng = self.rng
        if self.marker:  # first, so it finds room; square to the table, as people lay one
            self._place(Marker.sample(rng), lambda: (self._free()[0], 0.0))
        counts: dict[type[Thing], int] = {
            Laptop: rng.choice([0, 1, 2], p=[0.3, 0.6, 0.1]),
            Keyboard: rng.choice([0, 1], p=[0.55, 0.45]),
            Book: rng.choice([0, 1, 2, 3], p=[0.45, 0.3, 0.17, 0.08]),
            Phone: rng.choice([0, 1, 2], p=[0.45, 0.45, 0.1]),
        }
        for kind, count in counts.items():
            spot = self._facing_user if kind in (Laptop, Keyboard) else self._free
            for _ in range(count):
                self._place(kind.sample(rng), spot)
        if rng.random() < 0.8:
            kinds, weights = zip(*LOOKALIKES, strict=True)
            for _ in range(rng.integers(1, 5)):
                kind = kinds[rng.choice(len(kinds), p=np.array(weights) / sum(weights))]
                self._place(kind.sample(rng), self._free)
        for _ in range(rng.choice([0, 1, 2, 3, 4], p=[0.05, 0.4, 0.3, 0.17, 0.08])):
            self._place_mug(Mug.sample(rng))
        for _ in range(rng.integers(0, 4)):
            self._place(Block.sample(rng), self._free)
        for kind, most in ((Paper, 4), (Cable, 2)):
            for _ in range(rng.integers(0, most + 1)):
                self._place(kind.sample(rng), self._free)
        return [p.thing for p in self.placed]

    # -- spots

    def _plane_point(self, u: float, v: float) -> tuple[float, float]:
        x, y = self.camera.to_plane(np.array([[u, v]]))[0]
        return float(x), float(y)

    def _turn(self) -> float:
        return float(self.rng.uniform(0, 2 * math.pi))

    def _free(self) -> tuple[tuple[float, float], float]:
        x1, y1, x2, y2 = self.surface
        u = self.rng.uniform(x1 + 0.03 * (x2 - x1), x2 - 0.03 * (x2 - x1))
        v = self.rng.uniform(y1 + 0.03 * (y2 - y1), y2 - 0.03 * (y2 - y1))
        return self._plane_point(u, v), self._turn()

    def _facing_user(self) -> tuple[tuple[float, float], float]:
        """Laptops and keyboards mostly face the person sitting on the camera's side."""
        center, angle = self._free()
        if self.rng.random() < 0.85:
            angle = float(self.rng.normal(0.0, 0.2))
        return center, angle

    def _near(
        self, other: Thing, radius: float, gaps: tuple[float, float]
    ) -> tuple[tuple[float, float], float]:
        """A spot a random gap in ``gaps`` (mm) from ``other``'s footprint, in a random direction."""
        direction = self._turn()
        unit = np.array([math.cos(direction), math.sin(direction)])
        origin = np.array(other.center)
        reach = float(((other.footprint() - origin) @ unit).max())
        x, y = origin + unit * (reach + self.rng.uniform(*gaps) + radius)
        return (float(x), float(y)), self._turn()

    def _near_edge(self, radius: float) -> tuple[tuple[float, float], float]:
        """A spot whose mug box is 0-10 cm inside one side of the table as the image shows it."""
        x1, y1, x2, y2 = self.surface
        middle = self._plane_point((x1 + x2) / 2, (y1 + y2) / 2)
        inset = (radius + self.rng.uniform(0, 100)) * self.camera.px_per_mm(np.array([*middle, 0]))
        side = self.rng.integers(4)
        along = self.rng.uniform(0.1, 0.9)
        u = x1 + inset if side == 0 else x2 - inset if side == 1 else x1 + along * (x2 - x1)
        v = y1 + inset if side == 2 else y2 - inset if side == 3 else y1 + along * (y2 - y1)
        return self._plane_point(u, v), self._turn()

    def _place_mug(self, mug: Mug) -> None:
        """Mugs go where the rules are tested: near objects, near the edge, near each other."""
        rng = self.rng
        things = [p.thing for p in self.placed]
        anchors = [t for t in things if t.label in ("laptop", "keyboard", "cell phone")]
        mugs = [t for t in things if isinstance(t, Mug)]
        roll = rng.random()
        spot: Spot
        if anchors and roll < 0.4:
            anchor = anchors[rng.integers(len(anchors))]
            spot = partial(self._near, anchor, mug.radius, (5.0, 220.0))
        elif roll < 0.65:
            spot = partial(self._near_edge, mug.radius)
        elif mugs and roll < 0.75:
            other = mugs[rng.integers(len(mugs))]
            spot = partial(self._near, other, mug.radius, (5.0, 150.0))
        else:
            spot = self._free
        if rng.random() < 0.15:
            coaster = Coaster.sample(rng)
            if self._place(mug, spot, companion=coaster) is not None:
                return
        if self._place(mug, spot) is None and spot is not self._free:
            self._place(mug, self._free)

    # -- checks

    def _measure(self, thing: Thing) -> _Placed:
        footprint = thing.footprint()
        middle = footprint.mean(axis=0)
        return _Placed(
            thing=thing,
            footprint=footprint,
            middle=middle,
            reach=float(np.linalg.norm(footprint - middle, axis=1).max()),
            box=_bounds(self.camera.project(thing.outline())),
            depth=float(self.camera.depth(thing.anchor()[None])[0]),
        )

    def _fits(self, new: _Placed) -> bool:
        """On the table, in the image, apart from every solid thing and hiding little of any."""
        w, d = self.setting.table
        (x1, y1), (x2, y2) = new.footprint.min(axis=0), new.footprint.max(axis=0)
        if x1 < 2 or y1 < 2 or x2 > w - 2 or y2 > d - 2:
            return False
        if new.thing.flat:
            return True
        if not _inside(new.box, self.camera.size, 2.0):
            return False
        for old in self.placed:
            if old.thing.flat:
                continue
            apart = float(np.linalg.norm(new.middle - old.middle)) - new.reach - old.reach
            if apart < GAP_MM and polygon_gap(new.footprint, old.footprint) < GAP_MM:
                return False
            hidden_box = new.box if new.depth > old.depth else old.box
            if _overlap(new.box, old.box) / max(_area(hidden_box), 1e-9) > MAX_HIDDEN:
                return False
        return True

    def _place(self, thing: Thing, spot: Spot, companion: Thing | None = None) -> Thing | None:
        """Try up to 25 spots; ``companion`` (a coaster) sits under the thing and moves with it."""
        for _ in range(25):
            center, angle = spot()
            placed = self._measure(thing.moved(center, angle))
            if not self._fits(placed):
                continue
            if companion is not None:
                under = self._measure(companion.moved(center, angle))
                if not self._fits(under):
                    continue
                self.placed.append(under)
            self.placed.append(placed)
            return placed.thing
        return None


@dataclass(frozen=True)
class _Placed:
    """A placed thing with what the checks need, computed once."""

    thing: Thing
    footprint: Array
    middle: Array
    reach: float
    box: tuple[float, float, float, float]
    depth: float


# ------------------------------------------------------------------ drawing


def _render(setting: Setting, things: list[Thing], rng: np.random.Generator) -> Image.Image:
    camera = setting.camera
    table_w, table_d = setting.table
    wall = scaled((200, 200, 205), rng.uniform(0.6, 1.1))
    image = texture_image(camera, -setting.table_height, floor, rng, wall)
    top = texture_image(camera, 0.0, table_top, rng, wall)
    painter = Painter(image, camera, setting.light)
    r, g, b = np.asarray(top.reduce(16)).reshape(-1, 3).mean(axis=0)
    edge = scaled((int(r), int(g), int(b)), 0.75)
    thick = float(rng.uniform(18, 40))
    for lx in (50.0, table_w - 50.0):
        for ly in (50.0, table_d - 50.0):
            leg = rect((lx, ly), 45, 45, 0.0, -setting.table_height)
            painter.solid(leg, rect((lx, ly), 45, 45, 0.0, -thick), scaled(edge, 0.8), cap=False)
    middle = (table_w / 2, table_d / 2)
    slab = rect(middle, table_w, table_d, 0.0, -thick)
    painter.solid(slab, rect(middle, table_w, table_d, 0.0, 0.0), edge, cap=False)
    on_table = Image.new("L", camera.size, 0)
    ImageDraw.Draw(on_table).polygon(painter.xy(setting.corners), fill=255)
    image.paste(top, mask=on_table)

    flat = [t for t in things if t.flat]
    solid = [t for t in things if not t.flat]
    for thing in flat:
        thing.draw(painter)
    shift = -setting.light[:2] / setting.light[2]
    painter.shadows(
        [t.shadow(shift) for t in solid],
        blur_mm=float(rng.uniform(6, 20)),
        strength=float(rng.uniform(0.25, 0.5)),
    )
    for thing in sorted(solid, key=lambda t: -camera.depth(t.anchor()[None])[0]):
        thing.draw(painter)
    return photo_finish(image, rng)


# ------------------------------------------------------------------ labels and truth


def _labels(setting: Setting, things: Sequence[Thing]) -> list[LabelBox]:
    camera = setting.camera
    labels = [LabelBox(TABLE_CLASS, setting.surface_box())]
    for thing in things:
        if thing.label is not None:
            box = _clip_box(_bounds(camera.project(thing.outline())), camera.size)
            labels.append(LabelBox(thing.label, box))
    return labels


def _plane(setting: Setting, things: Sequence[Thing]) -> dict[str, Any]:
    """The table plane's truth: the image-to-table homography (world mm, the table's corner at
    the origin), each labelled object's true footprint (where it touches the table) and every
    mug's true plane measures."""
    camera = setting.camera
    to_plane = np.linalg.inv(camera.homography(0.0))
    to_plane /= to_plane[2, 2]
    corners = setting.corners
    width, height = camera.size
    # a side is in view where some of it lies farther in than the border band the worker uses
    near_x = max(BORDER_PX, BORDER_SHARE * width)
    near_y = max(BORDER_PX, BORDER_SHARE * height)
    along = np.linspace(0.0, 1.0, 101)[:, None]
    visible = []
    for i in range(4):
        side = camera.project(corners[i] + along * (corners[(i + 1) % 4] - corners[i]))
        inside = (side[:, 0] > near_x) & (side[:, 0] < width - near_x)
        inside &= (side[:, 1] > near_y) & (side[:, 1] < height - near_y)
        visible.append(bool(inside.any()))
    labelled = [thing for thing in things if thing.label is not None]
    contacts = [(str(thing.label), thing.contact()) for thing in labelled]
    hulls = [thing.footprint() for thing in labelled]
    return {
        "homography": [[float(f"{v:.10g}") for v in row] for row in to_plane],
        "table_sides_in_view": visible,
        "footprints_mm": [
            [[round(float(x), 2), round(float(y), 2)] for x, y in contact]
            for _, contact in contacts
        ],
        "mugs": plane_truth(contacts, hulls, setting.table, visible),
    }


def _truth(
    setting: Setting, things: Sequence[Thing], labels: list[LabelBox], seed: int, index: int
) -> dict[str, Any]:
    camera = setting.camera
    surface = setting.surface_box()
    at = ((surface[0] + surface[2]) / 2, (surface[1] + surface[3]) / 2)
    along_x, along_y = camera.mm_per_px_at(at)
    mm_per_px = round(along_x, 6)
    if setting.view == "top":
        where = "uniform: top-down view, the table plane is parallel to the image"
    else:
        where = (
            "at the table centre (the centre of the table box), along the image x axis; "
            "slanted view: the scale changes across the image"
        )
    verdicts = expected_verdicts(camera.width, camera.height, labels, mm_per_px)
    return {
        "generator": GENERATOR,
        "seed": [seed, index],
        "image": {"width": camera.width, "height": camera.height},
        "view": setting.view,
        "camera": {
            "pitch_deg": round(math.degrees(math.acos(-camera.axes[2][2])), 2),
            "height_mm": round(float(camera.position[2]), 1),
            "focal_px": round(camera.focal, 2),
        },
        "mm_per_px": mm_per_px,
        "scale": {
            "mm_per_px": mm_per_px,
            "where": where,
            "at_px": [round(at[0], 2), round(at[1], 2)],
            "mm_per_px_along_y": round(along_y, 6),
        },
        "table": {
            "box": list(surface),
            "size_mm": [round(setting.table[0], 1), round(setting.table[1], 1)],
            "corners_px": [
                [round(float(u), 2), round(float(v), 2)] for u, v in camera.project(setting.corners)
            ],
            "whole_table_in_view": _inside(
                _bounds(camera.project(setting.corners)), camera.size, 0
            ),
        },
        "objects": [label.as_json() for label in labels],
        "distractors": [
            {
                "kind": t.kind,
                "box": list(_clip_box(_bounds(camera.project(t.outline())), camera.size)),
            }
            for t in things
            if t.label is None
        ],
        "rules": [dict(rule) for rule in FIXED_RULES],
        "verdicts": verdicts,
        "plane": _plane(setting, things),
        "marker": next(
            (
                {
                    "dictionary": t.dictionary,
                    "id": t.marker_id,
                    "size_mm": t.size,
                    "corners_mm": [
                        [round(float(x), 2), round(float(y), 2)] for x, y in t.corners()
                    ],
                }
                for t in things
                if isinstance(t, Marker)
            ),
            None,
        ),
        "compliant": not any(v["status"] == "fail" for v in verdicts),
    }
