"""Surface textures evaluated per pixel in world millimetres (the table top and the floor).

Each pixel is traced back to its plane and the texture is computed there, so wood grain and floor
tiles shrink with distance exactly as the objects on them do, at any image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from training.synthetic.camera import Array, Camera
from training.synthetic.render import Colour

WOODS: tuple[tuple[Colour, Colour], ...] = (
    ((196, 160, 112), (160, 118, 72)),  # oak
    ((150, 98, 60), (104, 64, 36)),  # walnut
    ((214, 188, 150), (186, 152, 110)),  # birch
    ((92, 62, 44), (60, 40, 28)),  # dark stain
)
PLAIN: tuple[Colour, ...] = (
    (236, 236, 232),  # white laminate
    (200, 200, 196),  # light grey
    (120, 122, 124),  # mid grey
    (44, 44, 46),  # black
    (222, 208, 180),  # beige
    (176, 190, 196),  # blue-grey
)
FLOORS: tuple[Colour, ...] = (
    (150, 150, 150),
    (110, 96, 84),
    (180, 170, 150),
    (80, 84, 92),
    (196, 186, 170),
)


def plane_points(camera: Camera, z: float, step: int = 1) -> tuple[Array, Array, Array]:
    """World x and y on the plane at height ``z`` of every ``step``-th pixel, and whether the
    pixel's ray reaches the plane at all."""
    offset = (step - 1) / 2.0
    u = (np.arange(0, camera.width, step, dtype=np.float32) + offset)[None, :]
    v = (np.arange(0, camera.height, step, dtype=np.float32) + offset)[:, None]
    inverse = np.linalg.inv(camera.homography(z)).astype(np.float32)
    w = inverse[2, 0] * u + inverse[2, 1] * v + inverse[2, 2]
    hits = w > 1e-9
    w = np.where(hits, w, np.float32(1.0))
    x = (inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]) / w
    y = (inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]) / w
    return x, y, hits


def texture_image(
    camera: Camera,
    z: float,
    texture: Callable[[Array, Array, np.random.Generator], Array],
    rng: np.random.Generator,
    fallback: Colour,
) -> Image.Image:
    """A whole-image texture of the plane at height ``z``, computed at half resolution and
    doubled (sensor noise and JPEG hide the 2x2 blocks); pixels whose ray misses the plane get
    ``fallback``."""
    x, y, hits = plane_points(camera, z, step=2)
    colour = np.where(hits[..., None], texture(x, y, rng), np.array(fallback, dtype=np.float32))
    half = Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8))
    return half.resize(camera.size, Image.Resampling.NEAREST)


def smooth_noise(
    x: Array, y: Array, rng: np.random.Generator, scale_mm: float, terms: int = 3
) -> Array:
    """Cheap band-limited noise in about [-1, 1]: a few random plane waves near ``scale_mm``."""
    total = np.zeros_like(x)
    for _ in range(terms):
        angle = rng.uniform(0, 2 * math.pi)
        frequency = 2 * math.pi / (scale_mm * rng.uniform(0.5, 2.0))
        phase = rng.uniform(0, 2 * math.pi)
        total += np.sin(frequency * (math.cos(angle) * x + math.sin(angle) * y) + phase)
    return total / math.sqrt(terms)


def _mix(a: Colour, b: Colour, t: Array) -> Array:
    ca, cb = np.array(a, dtype=np.float32), np.array(b, dtype=np.float32)
    return ca + (cb - ca) * t[..., None]


def table_top(x: Array, y: Array, rng: np.random.Generator) -> Array:
    """Wood planks with grain, or a plain laminate with faint mottling (RGB, float)."""
    if rng.random() < 0.5:
        light, dark = WOODS[rng.integers(len(WOODS))]
        plank = rng.uniform(90, 220)
        boards = np.floor(y / plank)
        board_tint = 1.0 + 0.08 * np.sin(boards * 12.9898 + rng.uniform(0, 100))
        warp = rng.uniform(4.0, 12.0) * smooth_noise(x, y, rng, 220.0)
        grain = 0.5 + 0.5 * np.sin(2 * math.pi * (y + warp) / rng.uniform(3.0, 9.0))
        colour = _mix(light, dark, grain**3 * 0.7 + 0.1 * warp / 12.0)
        return colour * board_tint[..., None]
    base = PLAIN[rng.integers(len(PLAIN))]
    mottle = 1.0 + 0.03 * smooth_noise(x, y, rng, 150.0)
    return np.array(base, dtype=np.float32) * mottle[..., None]


def floor(x: Array, y: Array, rng: np.random.Generator) -> Array:
    """Tiles, planks or carpet under the table (RGB, float)."""
    base = np.array(FLOORS[rng.integers(len(FLOORS))], dtype=np.float32)
    style = rng.integers(3)
    if style == 0:
        size = rng.uniform(300, 600)
        grout = (np.abs((x / size) % 1 - 0.5) > 0.49) | (np.abs((y / size) % 1 - 0.5) > 0.49)
        shade = np.where(grout, 0.7, 1.0 + 0.04 * smooth_noise(x, y, rng, 500.0))
    elif style == 1:
        boards = np.floor(x / rng.uniform(120, 200))
        shade = 1.0 + 0.07 * np.sin(boards * 78.233) + 0.04 * smooth_noise(x, y, rng, 80.0)
    else:
        shade = 1.0 + 0.06 * smooth_noise(x, y, rng, 40.0)
    return base * shade[..., None]
