"""Drawing through the camera: shaded solids, flat shapes, soft shadows and the photo finish.

Shapes are given as world points and projected here, so perspective, occlusion order and the label
boxes all follow from one camera. A colour is what a face pointing straight up shows; other faces
are shaded from it (Lambert plus a little specular), which is what makes a drawn cylinder read as
a mug rather than as a flat disc.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

from training.synthetic.camera import Array, Camera

Colour = tuple[int, int, int]
AMBIENT = 0.45
UP = np.array([0.0, 0.0, 1.0])


def circle(center: tuple[float, float], radius: float, z: float, n: int = 40) -> Array:
    """``n`` points of a horizontal circle, counter-clockwise seen from above."""
    return ellipse(center, radius, radius, 0.0, z, n)


def ellipse(
    center: tuple[float, float], rx: float, ry: float, angle: float, z: float, n: int = 40
) -> Array:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    local = np.column_stack([rx * np.cos(t), ry * np.sin(t), np.full(n, z)])
    return to_world(local, center, angle)


def rect(center: tuple[float, float], width: float, depth: float, angle: float, z: float) -> Array:
    """The four corners of a ``width`` x ``depth`` rectangle turned by ``angle`` about its centre."""
    return rounded_rect(center, width, depth, 0.0, angle, z)


def rounded_rect(
    center: tuple[float, float],
    width: float,
    depth: float,
    radius: float,
    angle: float,
    z: float,
    steps: int = 5,
) -> Array:
    """A rectangle with rounded corners (``radius`` 0: the plain four corners)."""
    hx, hy = width / 2.0, depth / 2.0
    if radius <= 0:
        corners = [(hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy)]
        local = np.array([(x, y, z) for x, y in corners], dtype=float)
        return to_world(local, center, angle)
    radius = min(radius, hx, hy)
    points = []
    for (cx, cy), start in (
        ((hx - radius, hy - radius), 0.0),
        ((-hx + radius, hy - radius), 0.5 * math.pi),
        ((-hx + radius, -hy + radius), math.pi),
        ((hx - radius, -hy + radius), 1.5 * math.pi),
    ):
        for t in np.linspace(start, start + 0.5 * math.pi, steps):
            points.append((cx + radius * math.cos(t), cy + radius * math.sin(t), z))
    return to_world(np.array(points), center, angle)


def to_world(local: Array, center: tuple[float, float], angle: float) -> Array:
    """Object-local points (x, y, z) turned by ``angle`` about z and moved to ``center``."""
    c, s = math.cos(angle), math.sin(angle)
    x = local[:, 0] * c - local[:, 1] * s + center[0]
    y = local[:, 0] * s + local[:, 1] * c + center[1]
    return np.column_stack([x, y, local[:, 2]])


def lifted(points: Array, z: float) -> Array:
    """The same points at height ``z``."""
    out = np.array(points, dtype=float, copy=True)
    out[:, 2] = z
    return out


def convex_hull(points: Array) -> Array:
    """The convex hull of 2-D points, counter-clockwise (Andrew's monotone chain)."""
    unique = sorted({(float(x), float(y)) for x, y in np.asarray(points)[:, :2]})
    if len(unique) <= 2:
        return np.array(unique)

    def half(ordered: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for p in ordered:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(unique), half(unique[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def polygon_gap(a: Array, b: Array) -> float:
    """Shortest distance between two convex polygons; 0 when they overlap."""
    if not _separated(a, b):
        return 0.0
    return min(_points_to_edges(a, b), _points_to_edges(b, a))


def _separated(a: Array, b: Array) -> bool:
    """Separating-axis test over the edge normals of both polygons."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.column_stack([-edges[:, 1], edges[:, 0]])
        pa, pb = a @ normals.T, b @ normals.T
        if np.any((pa.max(axis=0) < pb.min(axis=0)) | (pb.max(axis=0) < pa.min(axis=0))):
            return True
    return False


def _points_to_edges(points: Array, poly: Array) -> float:
    starts, ends = poly, np.roll(poly, -1, axis=0)
    seg = ends - starts
    length2 = np.maximum((seg**2).sum(axis=1), 1e-12)
    rel = points[:, None, :] - starts[None, :, :]
    t = np.clip((rel * seg[None]).sum(axis=2) / length2[None], 0.0, 1.0)
    nearest = starts[None] + t[..., None] * seg[None]
    return float(np.sqrt(((points[:, None, :] - nearest) ** 2).sum(axis=2)).min())


def scaled(colour: Colour, factor: float) -> Colour:
    r, g, b = (int(min(255, max(0, round(c * factor)))) for c in colour)
    return r, g, b


class Painter:
    """Draws world-space shapes onto one image through one camera under one light."""

    def __init__(self, image: Image.Image, camera: Camera, light: Array) -> None:
        self.image = image
        self.camera = camera
        self.light = light / np.linalg.norm(light)
        self.draw = ImageDraw.Draw(image)
        self._up_light = AMBIENT + (1 - AMBIENT) * max(0.0, float(self.light @ UP))

    def shade(self, colour: Colour, normal: Array, point: Array, gloss: float = 0.0) -> Colour:
        """The colour of a face with this normal at ``point``, relative to an upward face."""
        normal = normal / np.linalg.norm(normal)
        lit = AMBIENT + (1 - AMBIENT) * max(0.0, float(normal @ self.light))
        shaded = scaled(colour, lit / self._up_light)
        if gloss <= 0:
            return shaded
        view = self.camera.position - point
        half = self.light + view / np.linalg.norm(view)
        highlight = gloss * max(0.0, float(normal @ half) / float(np.linalg.norm(half))) ** 40
        r, g, b = (int(min(255, c + 255 * highlight)) for c in shaded)
        return r, g, b

    def xy(self, points: Array) -> list[tuple[float, float]]:
        return [(float(u), float(v)) for u, v in self.camera.project(points)]

    def face(self, points: Array, colour: Colour, normal: Array | None = None) -> None:
        """A flat polygon; shaded when its normal is given (an upward face keeps its colour)."""
        if normal is not None:
            colour = self.shade(colour, normal, points.mean(axis=0))
        self.draw.polygon(self.xy(points), fill=colour)

    def faces(self, polygons: Array, colour: Colour) -> None:
        """Many same-coloured polygons (K, n, 3) with one projection (keyboard keys)."""
        projected = self.camera.project(polygons.reshape(-1, 3)).reshape(len(polygons), -1, 2)
        for polygon in projected:
            self.draw.polygon([(float(u), float(v)) for u, v in polygon], fill=colour)

    def solid(
        self,
        bottom: Array,
        top: Array,
        colour: Colour,
        *,
        top_colour: Colour | None = None,
        gloss: float = 0.0,
        cap: bool = True,
    ) -> None:
        """A prism or frustum between two matching rings: visible sides far to near, then the top."""
        centre = np.vstack([bottom, top]).mean(axis=0)
        b0, b1 = bottom, np.roll(bottom, -1, axis=0)
        t0, t1 = top, np.roll(top, -1, axis=0)
        mids = (b0 + b1 + t0 + t1) / 4.0
        normals = np.cross(b1 - b0, t0 - b0)
        flip = ((mids - centre) * normals).sum(axis=1) < 0
        normals[flip] *= -1
        facing = ((self.camera.position - mids) * normals).sum(axis=1) > 0
        order = np.argsort(-self.camera.depth(mids))
        for i in order:
            if facing[i] and np.linalg.norm(normals[i]) > 1e-9:
                quad = np.array([b0[i], b1[i], t1[i], t0[i]])
                self.draw.polygon(
                    self.xy(quad), fill=self.shade(colour, normals[i], mids[i], gloss)
                )
        if cap:
            self.face(top, top_colour or colour)

    def line(self, points: Array, width_mm: float, colour: Colour) -> None:
        """A thick polyline whose width follows the perspective at its middle point."""
        middle = points[len(points) // 2]
        width = max(1, round(width_mm * self.camera.px_per_mm(middle)))
        self.draw.line(self.xy(points), fill=colour, width=width, joint="curve")

    def clipped(self, shape: Array, clip: Array, colour: Colour) -> None:
        """Fill ``shape`` only where it lies inside ``clip`` (coffee seen through a mug's rim)."""
        clip_px = self.camera.project(clip)
        x0, y0 = np.floor(clip_px.min(axis=0)).astype(int)
        x1, y1 = np.ceil(clip_px.max(axis=0)).astype(int) + 1
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.image.width), min(y1, self.image.height)
        if x1 <= x0 or y1 <= y0:
            return
        offset = np.array([x0, y0])
        inside = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(inside).polygon([tuple(p) for p in clip_px - offset], fill=255)
        drawn = Image.new("L", inside.size, 0)
        shape_px = self.camera.project(shape) - offset
        ImageDraw.Draw(drawn).polygon([tuple(p) for p in shape_px], fill=255)
        self.image.paste(colour, (x0, y0, x1, y1), ImageChops.multiply(inside, drawn))

    def shadows(self, polygons: list[Array], blur_mm: float, strength: float) -> None:
        """Darken the table under every polygon (world points), blurred into a soft shadow."""
        if not polygons:
            return
        # drawn and blurred at a quarter of the size: a soft shadow has no detail to lose
        size = (max(1, self.image.width // 4), max(1, self.image.height // 4))
        mask = Image.new("L", size, 0)
        draw = ImageDraw.Draw(mask)
        for polygon in polygons:
            draw.polygon([(u / 4, v / 4) for u, v in self.xy(polygon)], fill=255)
        scale = self.camera.px_per_mm(polygons[0].mean(axis=0)) / 4
        mask = mask.filter(ImageFilter.GaussianBlur(max(0.5, blur_mm * scale)))
        mask = mask.resize(self.image.size, Image.Resampling.BILINEAR)
        dark = ImageEnhance.Brightness(self.image).enhance(1.0 - strength)
        self.image.paste(Image.composite(dark, self.image, mask))


def photo_finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Uneven light, a colour cast, exposure and contrast, sensor noise and a little blur."""
    width, height = image.size
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    direction = rng.uniform(0, 2 * math.pi)
    light = 1.0 + rng.uniform(0.0, 0.25) * (math.cos(direction) * xs + math.sin(direction) * ys)
    light = light * (1.0 - rng.uniform(0.0, 0.35) * (xs**2 + ys**2) / 2.0)
    if rng.random() < 0.25:
        gx, gy, spread = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.2, 0.6)
        light = light + rng.uniform(0.1, 0.35) * np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / spread)
    contrast = rng.uniform(0.8, 1.15)
    gain = rng.uniform(0.9, 1.1, size=3).astype(np.float32) * rng.uniform(0.7, 1.2) * contrast
    # contrast about the mean grey level: (p * g - m) * c + m, folded into one gain and one offset
    offset = float(np.asarray(image.reduce(8), dtype=np.float32).mean()) * (1.0 - contrast)
    noise = rng.standard_normal((height, width), dtype=np.float32)
    noise *= rng.uniform(1.0, 7.0)
    noise += offset
    pixels = np.asarray(image, dtype=np.float32)
    pixels *= light[..., None]
    pixels *= gain
    pixels += noise[..., None]
    np.clip(pixels, 0, 255, out=pixels)
    finished = Image.fromarray(pixels.astype(np.uint8))
    # now and then a softer lens: shrink and enlarge again (cheaper than a Gaussian blur)
    soften = rng.uniform(0.5, 1.0)
    if rng.random() < 0.7:
        return finished
    small = (max(1, round(width * soften)), max(1, round(height * soften)))
    return finished.resize(small, Image.Resampling.BILINEAR).resize(
        (width, height), Image.Resampling.BILINEAR
    )
