"""A pinhole camera over the table plane (world millimetres, the table top at z = 0, z up).

Top-down and slanted views come from one model, so every drawn outline and its label box go through
the same projection: a label box is the box of the projected outline, whatever the view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Camera:
    """Image ``x`` right and ``y`` down; ``axes`` rows are those two and the viewing direction."""

    width: int
    height: int
    focal: float
    position: Array
    axes: Array

    @classmethod
    def looking_at(
        cls,
        width: int,
        height: int,
        *,
        hfov_deg: float,
        target: tuple[float, float],
        distance: float,
        pitch_deg: float,
        yaw_deg: float,
    ) -> Camera:
        """Aim at ``target`` on the table from ``distance`` mm; pitch 0 looks straight down.

        With yaw 0 the image x axis is the world x axis and the image's lower edge is the world's
        +y side, where a slanted camera stands.
        """
        focal = width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))
        pitch, yaw = math.radians(pitch_deg), math.radians(yaw_deg)
        spin = np.array(
            [[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1]]
        )
        right = spin @ np.array([1.0, 0.0, 0.0])
        down = spin @ np.array([0.0, math.cos(pitch), -math.sin(pitch)])
        forward = spin @ np.array([0.0, -math.sin(pitch), -math.cos(pitch)])
        position = np.array([target[0], target[1], 0.0]) - distance * forward
        return cls(width, height, focal, position, np.stack([right, down, forward]))

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def depth(self, points: Array) -> Array:
        """Distance of each point (N, 3) along the viewing direction."""
        return (np.asarray(points, dtype=float) - self.position) @ self.axes[2]

    def project(self, points: Array) -> Array:
        """World points (N, 3) to image pixels (N, 2)."""
        camera = (np.asarray(points, dtype=float) - self.position) @ self.axes.T
        centre = np.array([self.width / 2.0, self.height / 2.0])
        return self.focal * camera[:, :2] / camera[:, 2:3] + centre

    def px_per_mm(self, point: Array) -> float:
        """Image pixels per millimetre for a short length seen square-on at ``point``."""
        return float(self.focal / self.depth(np.asarray(point, dtype=float)[None, :])[0])

    def homography(self, z: float = 0.0) -> Array:
        """The 3x3 map from the plane at height ``z`` (x, y, 1) to image pixels (u, v, 1)."""
        intrinsics = np.array(
            [[self.focal, 0.0, self.width / 2.0], [0.0, self.focal, self.height / 2.0], [0, 0, 1]]
        )
        origin = np.array([0.0, 0.0, z]) - self.position
        extrinsics = np.column_stack([self.axes[:, 0], self.axes[:, 1], self.axes @ origin])
        return intrinsics @ extrinsics

    @cached_property
    def _from_image(self) -> Array:
        return np.linalg.inv(self.homography(0.0))

    def to_plane(self, pixels: Array, z: float = 0.0) -> Array:
        """Image pixels (N, 2) back onto the plane at height ``z``: world (x, y) in mm."""
        pixels = np.asarray(pixels, dtype=float)
        inverse = self._from_image if z == 0.0 else np.linalg.inv(self.homography(z))
        ones = np.ones((len(pixels), 1))
        mapped = np.hstack([pixels, ones]) @ inverse.T
        return mapped[:, :2] / mapped[:, 2:3]

    def mm_per_px_at(self, pixel: tuple[float, float]) -> tuple[float, float]:
        """Table-plane millimetres per image pixel at ``pixel``, along image x and along image y."""
        u, v = pixel
        ends = self.to_plane(np.array([[u - 0.5, v], [u + 0.5, v], [u, v - 0.5], [u, v + 0.5]]))
        return (
            float(np.linalg.norm(ends[1] - ends[0])),
            float(np.linalg.norm(ends[3] - ends[2])),
        )
