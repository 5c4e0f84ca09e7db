"""Things on a desk, built from real sizes in millimetres.

Labelled: mugs (COCO ``cup``), laptops, keyboards, phones and books. Unlabelled: the round
look-alikes that false detections were made of when this was first tried (plates, saucers, bowls,
coasters, stickers, dark discs, mug-coloured blobs) and clutter (paper, notes, pens, cables).

Each thing is made at the origin by ``sample(rng)`` and put in place with ``moved``; ``outline``
gives the world points whose projection bounds it, which is where its label box comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import ClassVar, Self

import cv2
import numpy as np

from training.synthetic.camera import Array
from training.synthetic.render import (
    UP,
    Colour,
    Painter,
    circle,
    convex_hull,
    ellipse,
    lifted,
    rect,
    rounded_rect,
    scaled,
    to_world,
)

MUG_COLOURS: tuple[Colour, ...] = (
    (245, 245, 240),
    (240, 230, 205),
    (35, 35, 38),
    (190, 40, 40),
    (40, 60, 130),
    (70, 130, 200),
    (60, 140, 90),
    (235, 200, 60),
    (150, 150, 155),
    (230, 160, 170),
    (225, 120, 50),
    (50, 150, 150),
    (120, 80, 50),
)
DRINKS: tuple[Colour, ...] = ((38, 22, 14), (120, 72, 40), (168, 122, 82), (150, 80, 30))
LAPTOP_COLOURS: tuple[Colour, ...] = (
    (200, 202, 206),
    (110, 112, 118),
    (40, 40, 44),
    (220, 200, 180),
    (235, 235, 235),
)
KEYBOARD_COLOURS: tuple[tuple[Colour, Colour], ...] = (
    ((35, 35, 38), (60, 60, 66)),
    ((232, 232, 232), (250, 250, 250)),
    ((120, 120, 125), (205, 205, 210)),
)
PHONE_COLOURS: tuple[Colour, ...] = (
    (25, 25, 28),
    (235, 235, 235),
    (60, 80, 130),
    (220, 180, 170),
    (190, 190, 195),
)
PLATE_COLOURS: tuple[Colour, ...] = (
    (246, 246, 244),
    (240, 232, 214),
    (180, 205, 225),
    (200, 110, 80),
    (70, 72, 76),
)
COASTER_COLOURS: tuple[Colour, ...] = (
    (176, 136, 80),
    (30, 30, 32),
    (130, 130, 134),
    (150, 60, 50),
    (60, 100, 140),
)
DARK_DISCS: tuple[Colour, ...] = ((30, 20, 15), (50, 35, 25), (20, 20, 22), (62, 42, 30))
SCREEN_OFF: Colour = (16, 17, 20)
BEZEL: Colour = (18, 18, 20)


def _colour(rng: np.random.Generator, palette: tuple[Colour, ...], jitter: float = 0.06) -> Colour:
    """A palette colour with a little random variation, so no two mugs are exactly alike."""
    return scaled(palette[rng.integers(len(palette))], 1.0 + rng.uniform(-jitter, jitter))


def _bright(rng: np.random.Generator) -> Colour:
    r, g, b = (int(v) for v in rng.integers(30, 240, size=3))
    return r, g, b


@dataclass(frozen=True, kw_only=True)
class Thing:
    """Something on the table at ``center`` (mm), turned by ``angle`` (radians) about z."""

    center: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    colour: Colour = (128, 128, 128)

    kind: ClassVar[str] = "thing"
    label: ClassVar[str | None] = None
    # lies under everything else and may be covered (paper, cables): no collision checks
    flat: ClassVar[bool] = False

    @property
    def height(self) -> float:
        return float(self.outline()[:, 2].max())

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Self:
        """A random one of its kind at the origin."""
        raise NotImplementedError

    def moved(self, center: tuple[float, float], angle: float) -> Self:
        return replace(self, center=center, angle=angle)

    def outline(self) -> Array:
        raise NotImplementedError

    def footprint(self) -> Array:
        """The convex area the thing covers on the table (mm): its shape's hull, moved."""
        hull = _local_hull(replace(self, center=(0.0, 0.0), angle=0.0))
        local = np.column_stack([hull, np.zeros(len(hull))])
        return to_world(local, self.center, self.angle)[:, :2]

    def contact(self) -> Array:
        """Where the thing touches the table (mm; SPEC 10's footprint): all of its area, unless
        part of it stands above the table (a mug's handle, a laptop's open screen)."""
        return self.footprint()

    def shadow(self, shift: Array) -> Array:
        """Where the thing's shadow falls; ``shift`` is the ground offset per mm of height."""
        points = self.outline()
        cast = points[:, :2] + shift[None, :] * points[:, 2:3]
        hull = convex_hull(np.vstack([cast, points[:, :2]]))
        return np.column_stack([hull, np.full(len(hull), 0.05)])

    def anchor(self) -> Array:
        """The point whose distance from the camera orders the drawing (far things first)."""
        return np.array([self.center[0], self.center[1], self.height / 2.0])

    def draw(self, painter: Painter) -> None:
        raise NotImplementedError


@lru_cache(maxsize=256)
def _local_hull(shape: Thing) -> Array:
    """The hull of a thing at the origin; placement tries many spots for one shape."""
    return convex_hull(shape.outline()[:, :2])


def _vessel_top(
    painter: Painter,
    rim: Array,
    wall: float,
    colour: Colour,
    inside: Colour,
    drink: Colour | None,
    depth: float,
) -> None:
    """The rim, the shaded inner wall and the drink (or the empty bottom) seen through it."""
    center = rim.mean(axis=0)
    radius = float(np.linalg.norm(rim[0, :2] - center[:2]))
    z = float(center[2])
    c = (float(center[0]), float(center[1]))
    painter.face(rim, scaled(colour, 1.04), UP)
    opening = circle(c, radius - wall, z, len(rim))
    painter.face(opening, scaled(inside, 0.72))
    surface = circle(c, radius - wall - 0.04 * depth, z - depth, len(rim))
    painter.clipped(surface, opening, drink if drink is not None else scaled(inside, 0.92))


@dataclass(frozen=True, kw_only=True)
class Mug(Thing):
    """A (slightly flared) cylinder with a C-shaped handle, a rim and a drink inside."""

    radius: float = 42.0
    tall: float = 95.0
    flare: float = 1.0
    wall: float = 4.0
    reach: float = 28.0
    grip: float = 10.0
    inside: Colour = (240, 240, 240)
    drink: Colour | None = None
    depth: float = 15.0
    band: Colour | None = None

    kind = "mug"
    label = "cup"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Mug:
        colour = _colour(rng, MUG_COLOURS)
        tall = rng.uniform(85, 110)
        return cls(
            colour=colour,
            radius=rng.uniform(40, 47.5),
            tall=tall,
            flare=rng.choice([1.0, rng.uniform(1.0, 1.12)]),
            wall=rng.uniform(3, 5),
            reach=rng.uniform(22, 35),
            grip=rng.uniform(8, 12),
            inside=colour if rng.random() < 0.6 else _colour(rng, MUG_COLOURS[:2]),
            drink=None if rng.random() < 0.15 else _colour(rng, DRINKS, 0.1),
            depth=rng.uniform(8, 35) if rng.random() < 0.85 else tall - 8,
            band=_bright(rng) if rng.random() < 0.2 else None,
        )

    def contact(self) -> Array:
        return circle(self.center, self.radius, 0.0)[:, :2]

    def _radius_at(self, z: Array | float) -> Array | float:
        return self.radius * (1.0 + (self.flare - 1.0) * np.asarray(z) / self.tall)

    def _handle(self) -> Array:
        t = np.linspace(0.0, math.pi, 13)
        z = 0.52 * self.tall + 0.29 * self.tall * np.cos(t)
        out = self._radius_at(z) - 0.3 * self.grip + self.reach * np.sin(t) ** 0.7
        local = np.column_stack([out, np.zeros_like(out), z])
        return to_world(local, self.center, self.angle)

    def outline(self) -> Array:
        handle = self._handle()
        half = self.grip / 2.0
        offsets = [(half, 0, 0), (-half, 0, 0), (0, half, 0), (0, -half, 0), (0, 0, half)]
        thick = np.vstack([handle + np.array(o) for o in offsets] + [handle - [0, 0, half]])
        top = circle(self.center, self.radius * self.flare, self.tall)
        return np.vstack([circle(self.center, self.radius, 0.0), top, thick])

    def draw(self, painter: Painter) -> None:
        handle = self._handle()
        tip = handle[len(handle) // 2]
        axis = np.array([self.center[0], self.center[1], tip[2]])
        behind = painter.camera.depth(tip[None])[0] > painter.camera.depth(axis[None])[0]
        grip_colour = painter.shade(self.colour, tip - axis, tip, gloss=0.3)
        if behind:
            painter.line(handle, self.grip, grip_colour)
        bottom = circle(self.center, self.radius, 0.0)
        top = circle(self.center, self.radius * self.flare, self.tall)
        painter.solid(bottom, top, self.colour, gloss=0.35, cap=False)
        if self.band is not None:
            z0, z1 = 0.45 * self.tall, 0.62 * self.tall
            painter.solid(
                circle(self.center, float(self._radius_at(z0)) + 0.3, z0),
                circle(self.center, float(self._radius_at(z1)) + 0.3, z1),
                self.band,
                gloss=0.35,
                cap=False,
            )
        _vessel_top(painter, top, self.wall, self.colour, self.inside, self.drink, self.depth)
        if not behind:
            painter.line(handle, self.grip, grip_colour)


@dataclass(frozen=True, kw_only=True)
class Laptop(Thing):
    """A base with keys and touchpad, and an open screen hinged at its back edge (or closed)."""

    width: float = 310.0
    depth: float = 215.0
    thickness: float = 16.0
    tilt: float | None = 0.35
    keys: Colour = (30, 30, 30)
    display: Colour = SCREEN_OFF
    windows: tuple[tuple[float, float, float, float, Colour], ...] = ()

    kind = "laptop"
    label = "laptop"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Laptop:
        colour = _colour(rng, LAPTOP_COLOURS, 0.03)
        lit = rng.random() < 0.7
        windows = []
        for _ in range(rng.integers(1, 4) if lit else 0):
            u0, u1 = sorted(rng.uniform(0, 1, 2))
            v0, v1 = sorted(rng.uniform(0, 1, 2))
            windows.append((float(u0), float(u1), float(v0), float(v1), _bright(rng)))
        return cls(
            colour=colour,
            width=rng.uniform(300, 330),
            depth=rng.uniform(205, 235),
            thickness=rng.uniform(12, 18),
            tilt=None if rng.random() < 0.15 else rng.uniform(0.1, 0.6),
            keys=scaled(colour, 0.3) if colour[0] > 100 else (22, 22, 24),
            display=_bright(rng) if lit else SCREEN_OFF,
            windows=tuple(windows),
        )

    def contact(self) -> Array:
        return rect(self.center, self.width, self.depth, self.angle, 0.0)[:, :2]

    def _world(self, points: list[tuple[float, float, float]]) -> Array:
        return to_world(np.array(points, dtype=float), self.center, self.angle)

    def _screen(self) -> Array:
        """Hinge left, hinge right, top right, top left."""
        assert self.tilt is not None
        side = self.depth * 0.95
        w, y0, t = self.width / 2.0, -self.depth / 2.0, self.thickness
        top_y, top_z = y0 - side * math.sin(self.tilt), t + side * math.cos(self.tilt)
        return self._world([(-w, y0, t), (w, y0, t), (w, top_y, top_z), (-w, top_y, top_z)])

    def outline(self) -> Array:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        parts = [base, lifted(base, self.thickness)]
        if self.tilt is not None:
            parts.append(self._screen())
        return np.vstack(parts)

    def _panel(self, x0: float, x1: float, y0: float, y1: float, z: float) -> Array:
        """A rectangle on the base, in fractions of the width and depth."""
        return self._scaled_local(_key_grid(x0, x1, y0, y1, rows=1, cols=1, gap=0.0), z)[0]

    def _scaled_local(self, quads: Array, z: float) -> Array:
        """Quads (K, 4, 2) in fractions of the width and depth, at height ``z``, in the world."""
        local = quads.reshape(-1, 2) * np.array([self.width, self.depth])
        points = np.column_stack([local, np.full(len(local), z)])
        return to_world(points, self.center, self.angle).reshape(-1, 4, 3)

    def draw(self, painter: Painter) -> None:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        painter.solid(base, lifted(base, self.thickness), self.colour, gloss=0.2)
        z = self.thickness + 0.2
        if self.tilt is None:
            logo = ellipse(self.center, 14, 16, self.angle, z)
            painter.face(logo, scaled(self.colour, 1.12), UP)
            return
        painter.face(self._panel(-0.44, 0.44, -0.46, 0.02, z), scaled(self.colour, 0.8), UP)
        keys = _key_grid(-0.43, 0.43, -0.45, 0.01, rows=5, cols=14, gap=0.12)
        painter.faces(self._scaled_local(keys, z + 0.1), self.keys)
        painter.face(self._panel(-0.16, 0.16, 0.12, 0.42, z), scaled(self.colour, 0.93), UP)
        screen = self._screen()
        middle = screen.mean(axis=0)
        # the display faces the base (and the user); the lid's back faces away from it
        display = np.cross(screen[1] - screen[0], screen[3] - screen[0])
        if display @ (np.array([*self.center, self.thickness]) - middle) < 0:
            display = -display
        if display @ (painter.camera.position - middle) <= 0:
            painter.face(screen, self.colour, -display)
            painter.face(_quad_part(screen, 0.45, 0.55, 0.42, 0.58), scaled(self.colour, 1.12))
            return
        painter.face(screen, BEZEL)
        painter.face(_quad_part(screen, 0.03, 0.97, 0.05, 0.95), self.display)
        for u0, u1, v0, v1, colour in self.windows:
            part = _quad_part(
                screen, 0.05 + 0.9 * u0, 0.05 + 0.9 * u1, 0.07 + 0.86 * v0, 0.07 + 0.86 * v1
            )
            painter.face(part, colour)


def _key_grid(
    x0: float, x1: float, y0: float, y1: float, *, rows: int, cols: int, gap: float = 0.1
) -> Array:
    """``rows`` x ``cols`` key tops (K, 4, 2) filling [x0, x1] x [y0, y1], ``gap`` of a pitch apart."""
    px, py = (x1 - x0) / cols, (y1 - y0) / rows
    left = x0 + np.arange(cols) * px + gap * px / 2
    top = y0 + np.arange(rows) * py + gap * py / 2
    lx, ty = (a.ravel() for a in np.meshgrid(left, top))
    rx, by = lx + px * (1 - gap), ty + py * (1 - gap)
    return np.stack([np.column_stack(c) for c in ((rx, by), (lx, by), (lx, ty), (rx, ty))], axis=1)


def _quad_part(quad: Array, u0: float, u1: float, v0: float, v1: float) -> Array:
    """The sub-rectangle [u0, u1] x [v0, v1] of a planar quad (a, b, c, d: u along a-b, v along a-d)."""
    a, b, c, d = quad

    def at(u: float, v: float) -> Array:
        return (1 - u) * (1 - v) * a + u * (1 - v) * b + u * v * c + (1 - u) * v * d

    return np.array([at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)])


@dataclass(frozen=True, kw_only=True)
class Keyboard(Thing):
    width: float = 440.0
    depth: float = 140.0
    tall: float = 22.0
    keys: Colour = (60, 60, 66)
    numpad: bool = True

    kind = "keyboard"
    label = "keyboard"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Keyboard:
        body, keys = KEYBOARD_COLOURS[rng.integers(len(KEYBOARD_COLOURS))]
        full = rng.random() < 0.85
        return cls(
            colour=body,
            keys=keys,
            width=rng.uniform(430, 450) if full else rng.uniform(355, 365),
            depth=rng.uniform(125, 150),
            tall=rng.uniform(18, 28),
            numpad=full,
        )

    def outline(self) -> Array:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        return np.vstack([base, lifted(base, self.tall)])

    def draw(self, painter: Painter) -> None:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        painter.solid(base, lifted(base, self.tall), self.colour, gloss=0.15)
        keys = [_key_grid(-0.47, 0.2 if self.numpad else 0.47, -0.42, 0.42, rows=6, cols=15)]
        if self.numpad:
            keys.append(_key_grid(0.25, 0.47, -0.42, 0.42, rows=6, cols=4))
        local = np.vstack(keys).reshape(-1, 2) * np.array([self.width, self.depth])
        points = np.column_stack([local, np.full(len(local), self.tall + 0.5)])
        painter.faces(to_world(points, self.center, self.angle).reshape(-1, 4, 3), self.keys)


@dataclass(frozen=True, kw_only=True)
class Phone(Thing):
    width: float = 72.0
    length: float = 150.0
    thickness: float = 8.0
    screen: Colour | None = SCREEN_OFF  # None: lying face down
    icons: tuple[Colour, ...] = ()

    kind = "cell phone"
    label = "cell phone"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Phone:
        face_down = rng.random() < 0.3
        lit = not face_down and rng.random() < 0.5
        return cls(
            colour=_colour(rng, PHONE_COLOURS),
            width=rng.uniform(68, 78),
            length=rng.uniform(143, 162),
            thickness=rng.uniform(7, 9),
            screen=None if face_down else (_bright(rng) if lit else SCREEN_OFF),
            icons=tuple(_bright(rng) for _ in range(20)) if lit and rng.random() < 0.6 else (),
        )

    def _shape(self, inset: float, z: float) -> Array:
        return rounded_rect(
            self.center, self.width - 2 * inset, self.length - 2 * inset, 9 - inset, self.angle, z
        )

    def outline(self) -> Array:
        return np.vstack([self._shape(0, 0.0), self._shape(0, self.thickness)])

    def draw(self, painter: Painter) -> None:
        t = self.thickness
        top_colour = self.colour if self.screen is None else BEZEL
        painter.solid(self._shape(0, 0.0), self._shape(0, t), self.colour, top_colour=top_colour)
        z = t + 0.1
        if self.screen is None:
            bump = rounded_rect((0.0, 0.0), 28, 28, 6, 0.0, z)
            offset = np.array([-self.width / 2 + 20, -self.length / 2 + 20, 0.0])
            painter.face(
                to_world(bump + offset, self.center, self.angle), scaled(self.colour, 0.8), UP
            )
            for lens in (
                (-self.width / 2 + 14, -self.length / 2 + 14),
                (-self.width / 2 + 26, -self.length / 2 + 26),
            ):
                ring = to_world(circle(lens, 5, z + 0.1), self.center, self.angle)
                painter.face(ring, (20, 20, 24))
            return
        painter.face(self._shape(3, z), self.screen)
        for i, colour in enumerate(self.icons):
            x = (i % 4 - 1.5) * self.width * 0.2
            y = (i // 4 - 2.0) * self.length * 0.15
            icon = rounded_rect((x, y), 9, 9, 2.5, 0.0, z + 0.1)
            painter.face(to_world(icon, self.center, self.angle), colour)


@dataclass(frozen=True, kw_only=True)
class Book(Thing):
    width: float = 155.0
    length: float = 230.0
    thickness: float = 25.0
    pages: Colour = (235, 228, 210)
    title: Colour = (240, 240, 240)

    kind = "book"
    label = "book"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Book:
        width = rng.uniform(135, 175)
        return cls(
            colour=_bright(rng),
            width=width,
            length=width * rng.uniform(1.35, 1.6),
            thickness=rng.uniform(12, 45),
            pages=scaled((235, 228, 210), rng.uniform(0.9, 1.05)),
            title=_bright(rng),
        )

    def outline(self) -> Array:
        base = rect(self.center, self.width, self.length, self.angle, 0.0)
        return np.vstack([base, lifted(base, self.thickness)])

    def draw(self, painter: Painter) -> None:
        base = rect(self.center, self.width, self.length, self.angle, 0.0)
        painter.solid(base, lifted(base, self.thickness), self.pages, top_colour=self.colour)
        z = self.thickness + 0.1
        band = rect((0.0, -self.length * 0.22), self.width * 0.7, self.length * 0.12, 0.0, z)
        painter.face(to_world(band, self.center, self.angle), self.title, UP)


@dataclass(frozen=True, kw_only=True)
class Plate(Thing):
    """A low frustum with a rim and a sunken well; a saucer is a small one."""

    radius: float = 120.0
    tall: float = 18.0
    ring: Colour | None = None

    kind = "plate"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Plate:
        return cls(
            colour=_colour(rng, PLATE_COLOURS),
            radius=rng.uniform(95, 140),
            tall=rng.uniform(14, 24),
            ring=_bright(rng) if rng.random() < 0.3 else None,
        )

    def outline(self) -> Array:
        return np.vstack(
            [
                circle(self.center, self.radius * 0.62, 0.0),
                circle(self.center, self.radius, self.tall),
            ]
        )

    def draw(self, painter: Painter) -> None:
        top = circle(self.center, self.radius, self.tall)
        painter.solid(
            circle(self.center, self.radius * 0.62, 0.0), top, self.colour, gloss=0.3, cap=False
        )
        painter.face(top, self.colour, UP)
        if self.ring is not None:
            painter.face(circle(self.center, self.radius * 0.86, self.tall), self.ring, UP)
            painter.face(circle(self.center, self.radius * 0.82, self.tall), self.colour, UP)
        painter.face(
            circle(self.center, self.radius * 0.66, self.tall * 0.35), scaled(self.colour, 0.94)
        )


@dataclass(frozen=True, kw_only=True)
class Saucer(Plate):
    kind = "saucer"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Saucer:
        return cls(
            colour=_colour(rng, PLATE_COLOURS + MUG_COLOURS),
            radius=rng.uniform(65, 80),
            tall=rng.uniform(12, 18),
            ring=scaled(_colour(rng, PLATE_COLOURS), 0.85),
        )


@dataclass(frozen=True, kw_only=True)
class Bowl(Thing):
    radius: float = 75.0
    tall: float = 65.0
    inside: Colour = (240, 240, 240)
    content: Colour | None = None
    depth: float = 25.0

    kind = "bowl"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Bowl:
        colour = _colour(rng, PLATE_COLOURS + MUG_COLOURS)
        tall = rng.uniform(45, 70)
        return cls(
            colour=colour,
            radius=rng.uniform(70, 95),
            tall=tall,
            inside=colour,
            content=None if rng.random() < 0.4 else _colour(rng, (*DRINKS, (220, 180, 90)), 0.1),
            depth=rng.uniform(10, tall * 0.8),
        )

    def outline(self) -> Array:
        return np.vstack(
            [
                circle(self.center, self.radius * 0.55, 0.0),
                circle(self.center, self.radius, self.tall),
            ]
        )

    def draw(self, painter: Painter) -> None:
        top = circle(self.center, self.radius, self.tall)
        bottom = circle(self.center, self.radius * 0.55, 0.0)
        painter.solid(bottom, top, self.colour, gloss=0.3, cap=False)
        _vessel_top(painter, top, 4.0, self.colour, self.inside, self.content, self.depth)


@dataclass(frozen=True, kw_only=True)
class Disc(Thing):
    """A thin round (or square, or oval) thing; with a light ring it looks like a mug from above."""

    rx: float = 50.0
    ry: float = 50.0
    tall: float = 4.0
    square: bool = False
    ring: Colour | None = None
    ring_width: float = 6.0

    kind = "disc"

    def _shape(self, shrink: float, z: float) -> Array:
        if self.square:
            return rounded_rect(
                self.center, 2 * (self.rx - shrink), 2 * (self.ry - shrink), 8, self.angle, z
            )
        return ellipse(self.center, self.rx - shrink, self.ry - shrink, self.angle, z)

    def outline(self) -> Array:
        return np.vstack([self._shape(0, 0.0), self._shape(0, self.tall)])

    def draw(self, painter: Painter) -> None:
        painter.solid(self._shape(0, 0.0), self._shape(0, self.tall), self.ring or self.colour)
        if self.ring is not None:
            painter.face(self._shape(self.ring_width, self.tall + 0.05), self.colour, UP)


@dataclass(frozen=True, kw_only=True)
class Coaster(Disc):
    kind = "coaster"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Coaster:
        r = rng.uniform(45, 55)
        return cls(
            colour=_colour(rng, COASTER_COLOURS),
            rx=r,
            ry=r,
            tall=rng.uniform(3, 6),
            square=bool(rng.random() < 0.3),
        )


@dataclass(frozen=True, kw_only=True)
class Sticker(Disc):
    kind = "sticker"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Sticker:
        r = rng.uniform(15, 42)
        return cls(
            colour=_bright(rng),
            rx=r,
            ry=r,
            tall=0.3,
            ring=_bright(rng) if rng.random() < 0.4 else None,
            ring_width=r * 0.3,
        )


@dataclass(frozen=True, kw_only=True)
class DarkDisc(Disc):
    """Coffee-coloured circles: a dark disc alone, or inside a light ring like a mug's rim."""

    kind = "dark disc"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> DarkDisc:
        r = rng.uniform(30, 55)
        ringed = rng.random() < 0.35
        return cls(
            colour=_colour(rng, DARK_DISCS),
            rx=r,
            ry=r,
            tall=rng.uniform(0.5, 3),
            ring=_colour(rng, MUG_COLOURS) if ringed else None,
            ring_width=rng.uniform(4, 8),
        )


@dataclass(frozen=True, kw_only=True)
class Blob(Disc):
    kind = "blob"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Blob:
        r = rng.uniform(30, 55)
        return cls(colour=_colour(rng, MUG_COLOURS), rx=r, ry=r * rng.uniform(0.6, 1.0), tall=1.0)


@dataclass(frozen=True, kw_only=True)
class Paper(Thing):
    width: float = 210.0
    length: float = 297.0
    lines: int = 20

    kind = "paper"
    flat = True

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Paper:
        note = rng.random() < 0.35
        return cls(
            colour=scaled((246, 246, 242), rng.uniform(0.92, 1.0)) if not note else _bright(rng),
            width=76.0 if note else 210.0,
            length=76.0 if note else 297.0,
            lines=0 if note else int(rng.integers(0, 28)),
        )

    def outline(self) -> Array:
        return rect(self.center, self.width, self.length, self.angle, 0.3)

    def draw(self, painter: Painter) -> None:
        painter.face(self.outline(), self.colour, UP)
        for i in range(self.lines):
            y = -self.length * 0.4 + i * self.length * 0.8 / 28
            line = rect((0.0, y), self.width * 0.75, 1.5, 0.0, 0.35)
            painter.face(to_world(line, self.center, self.angle), scaled(self.colour, 0.55))


@dataclass(frozen=True, kw_only=True)
class Cable(Thing):
    path: tuple[tuple[float, float], ...] = ((0.0, 0.0), (100.0, 0.0))
    thickness: float = 5.0

    kind = "cable"
    flat = True

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Cable:
        control = rng.uniform(-250, 250, size=(4, 2))
        t = np.linspace(0, 1, 24)[:, None]
        curve = (
            (1 - t) ** 3 * control[0]
            + 3 * (1 - t) ** 2 * t * control[1]
            + 3 * (1 - t) * t**2 * control[2]
            + t**3 * control[3]
        )
        colour = (30, 30, 32) if rng.random() < 0.7 else (235, 235, 235)
        path = tuple((float(x), float(y)) for x, y in curve)
        return cls(colour=colour, path=path, thickness=rng.uniform(3.5, 6))

    def outline(self) -> Array:
        local = np.array([(x, y, 1.0) for x, y in self.path])
        return to_world(local, self.center, self.angle)

    def draw(self, painter: Painter) -> None:
        painter.line(self.outline(), self.thickness, self.colour)


@dataclass(frozen=True, kw_only=True)
class Block(Thing):
    """Small boxes: a pen, an eraser, a stapler, a charger."""

    width: float = 140.0
    depth: float = 9.0
    tall: float = 9.0

    kind = "clutter"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Block:
        if rng.random() < 0.5:
            return cls(colour=_bright(rng), width=rng.uniform(125, 150), depth=9.0, tall=9.0)
        return cls(
            colour=_bright(rng),
            width=rng.uniform(30, 130),
            depth=rng.uniform(20, 55),
            tall=rng.uniform(10, 40),
        )

    def outline(self) -> Array:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        return np.vstack([base, lifted(base, self.tall)])

    def draw(self, painter: Painter) -> None:
        base = rect(self.center, self.width, self.depth, self.angle, 0.0)
        painter.solid(base, lifted(base, self.tall), self.colour, gloss=0.2)


@dataclass(frozen=True, kw_only=True)
class Marker(Thing):
    """An ArUco marker printed on a card lying flat on the table (SPEC 10's calibration.marker):
    ``size`` mm of black border and cells, on a white card one cell wider each way."""

    dictionary: str = "DICT_4X4_50"
    marker_id: int = 7
    size: float = 150.0

    kind = "marker"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Marker:
        return cls(colour=(235, 235, 235))

    def outline(self) -> Array:
        card = self.size * 8 / 6
        return rect(self.center, card, card, self.angle, 0.2)

    def corners(self) -> Array:
        """The marker's corners in the detector's order (its top left first, clockwise as
        printed: the printed rows run along the marker's y)."""
        half = self.size / 2
        local = np.array(
            [(-half, -half, 0.0), (half, -half, 0.0), (half, half, 0.0), (-half, half, 0.0)]
        )
        return to_world(local, self.center, self.angle)[:, :2]

    def draw(self, painter: Painter) -> None:
        painter.face(self.outline(), self.colour)
        cells = cv2.aruco.generateImageMarker(
            cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)),
            self.marker_id,
            6,
        )
        cell = self.size / 6
        for row in range(6):
            for column in range(6):
                if cells[row, column] < 128:
                    x = -self.size / 2 + (column + 0.5) * cell
                    y = -self.size / 2 + (row + 0.5) * cell
                    local = rect((x, y), cell, cell, 0.0, 0.4)
                    painter.face(to_world(local, self.center, self.angle), (20, 20, 20))


LOOKALIKES: tuple[tuple[type[Thing], float], ...] = (
    (Plate, 0.14),
    (Saucer, 0.1),
    (Coaster, 0.18),
    (Bowl, 0.12),
    (Sticker, 0.13),
    (DarkDisc, 0.2),
    (Blob, 0.13),
)
