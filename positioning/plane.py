"""The table plane (SPEC 10): a homography from image pixels to table millimetres, and the frame
on that plane in which a calibrated scene is measured.

A slanted camera has no single millimetres-per-pixel. A calibrated scene is therefore measured in
the *table frame*: the table plane, scaled to the image's pixels at the table centre, its x axis
running (nearest) the image's x axis there and its y axis the way the image's y runs. At a slant
the frame keeps the plane's own axes (the calibration's mm, turned by quarter turns); seen
straight down it is the image's (then it is the image, at an exact scale).
Boxes, gaps, edges and the move search then work unchanged on footprints in that frame, and
``scale`` is exact there (``mm_per_frame_px``). Everything shown in the picture is mapped back.

The fit and the marker detector are OpenCV's (``cv2.findHomography``, ``cv2.aruco``); the checks
that make a bad calibration a clear error are ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from positioning.geometry import Box, Point, box_corners

# A box's footprint (where it meets the table): these classes lie flat, so the whole of their
# box is table; anything else stands up, and its box's top is drawn above its far side.
FLAT_CLASSES = frozenset({"keyboard", "cell phone", "book", "mouse", "remote", "scissors"})
# Round things standing up: with a camera recovered from the homography, their footprint is the
# base of the upright cylinder whose picture fills the box (``Camera.fit_cylinder``) ...
ROUND_CLASSES = frozenset({"cup", "mug", "bottle", "wine glass", "vase", "bowl"})
# ... and flat things by the thin slab whose picture fills their box (its top face is drawn
# beyond its far edge), this many mm thick
SLAB_MM = {"book": 25.0, "keyboard": 20.0, "cell phone": 8.0}
DEFAULT_SLAB_MM = 10.0
_ANGLES = np.linspace(0, 2 * math.pi, 24, endpoint=False)
CIRCLE = np.column_stack([np.cos(_ANGLES), np.sin(_ANGLES)])
SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
SOLID_MISS = 0.15
_OUTWARD = np.array([-1.0, -1.0, 1.0, 1.0])  # the way each side of a box (x1, y1, x2, y2) grows
HANDLE_WEIGHT = 0.2
# a standing thing's height in radii (of its base's half-width): a mug's, an open laptop's
TALL_PER_RADIUS = {"laptop": 1.3}
DEFAULT_TALL_PER_RADIUS = 2.2
TALL_PRIOR = 0.3
# A standing thing reaches back from its front edge this share of its width (a cup: round).
STANDING_DEPTH = {"laptop": 0.75}
DEFAULT_STANDING_DEPTH = 1.0
# A fit whose points miss their own positions by more than this share of their spread is refused.
MAX_REPROJECTION_SHARE = 0.05
# Image points this near the horizon (as a share of the table centre's projective depth) are not
# on the table in any useful sense; a surface corner beyond it is pulled back to it.
HORIZON_MARGIN = 0.1

MARKER_DICTIONARIES = {
    name: getattr(cv2.aruco, name)
    for name in dir(cv2.aruco)
    if name.startswith("DICT_") and isinstance(getattr(cv2.aruco, name), int)
}


class CalibrationError(ValueError):
    """A calibration that cannot give a table plane; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    return mapped[:, :2] / mapped[:, 2:3]


@dataclass(frozen=True)
class Homography:
    """Image pixels to table-plane millimetres; how well it fits the points it came from."""

    matrix: np.ndarray
    reprojection_error_mm: float
    source: str

    def to_plane(self, points: np.ndarray) -> np.ndarray:
        return _apply(self.matrix, np.asarray(points, dtype=float))

    def depth(self, points: np.ndarray) -> np.ndarray:
        """The projective depth of each image point (its sign says which side of the horizon)."""
        pts = np.asarray(points, dtype=float)
        return np.column_stack([pts, np.ones(len(pts))]) @ self.matrix[2]


def _spread(points: np.ndarray) -> tuple[float, float]:
    """The two singular values of the centred points: the second near zero means one line."""
    values = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return float(values[0]), float(values[1]) if len(values) > 1 else 0.0


def fit_homography(
    pixels: Sequence[Point], millimetres: Sequence[Point], source: str = "homography:points"
) -> Homography:
    """The homography through the point pairs (least squares over all of them; RANSAC from six
    points on, so one mistyped point does not bend the plane). Refused, naming the field: fewer
    than four points, repeated points, points on one line (in the image or on the table), a fit
    OpenCV cannot make, a horizon through the points, or points it misses by more than 5 % of
    their spread."""
    field = "calibration.points"
    px = np.asarray(pixels, dtype=float).reshape(-1, 2)
    mm = np.asarray(millimetres, dtype=float).reshape(-1, 2)
    if len(px) < 4 or len(px) != len(mm):
        raise CalibrationError(field, f"give at least 4 points with px and mm (got {len(px)})")
    for name, points in (("px", px), ("mm", mm)):
        if len({(round(x, 6), round(y, 6)) for x, y in points}) < len(points):
            raise CalibrationError(field, f"two points share the same {name} position")
        first, second = _spread(points)
        if first == 0 or second / first < 0.02:
            raise CalibrationError(
                field, f"the points' {name} positions lie on one line; spread them over the table"
            )
        if len(points) == 4 and _three_in_line(points):
            raise CalibrationError(
                field, f"three of the four points' {name} positions lie on one line"
            )
    extent = _spread(mm)[0] / math.sqrt(len(mm))
    if len(px) >= 6:
        matrix, _ = cv2.findHomography(px, mm, cv2.RANSAC, max(2.0, 0.01 * extent))
    else:
        matrix, _ = cv2.findHomography(px, mm, 0)
    if matrix is None or not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-12:
        raise CalibrationError(field, "no plane fits these points (a degenerate homography)")
    fitted = Homography(matrix, 0.0, source)
    depths = fitted.depth(px)
    if not (np.all(depths > 0) or np.all(depths < 0)):
        raise CalibrationError(field, "the points do not lie on one plane seen from one side")
    errors = np.linalg.norm(fitted.to_plane(px) - mm, axis=1)
    error = float(np.sqrt(np.mean(errors**2)))
    if error > MAX_REPROJECTION_SHARE * extent:
        raise CalibrationError(
            field,
            f"the points do not agree on one plane (reprojection error {error:.1f} mm over a "
            f"spread of {extent:.0f} mm); check their px and mm",
        )
    return Homography(matrix, error, source)


def _three_in_line(points: np.ndarray) -> bool:
    for skip in range(4):
        a, b, c = (points[i] for i in range(4) if i != skip)
        area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
        longest = max(np.linalg.norm(b - a), np.linalg.norm(c - a), np.linalg.norm(c - b))
        if area <= 0.02 * longest**2:
            return True
    return False


def find_marker(gray: np.ndarray, dictionary: str, marker_id: int, size_mm: float) -> Homography:
    """The homography from an ArUco marker lying flat on the table: its four corners are the
    points (the marker's own top-left corner at the plane's origin, x along its top side)."""
    field = "calibration.marker"
    if dictionary not in MARKER_DICTIONARIES:
        raise CalibrationError(f"{field}.dictionary", f"unknown ArUco dictionary {dictionary!r}")
    parameters = cv2.aruco.DetectorParameters()
    parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX  # corners to 0.1 px
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(MARKER_DICTIONARIES[dictionary]), parameters
    )
    corners, ids, _ = detector.detectMarkers(gray)
    found = (
        []
        if ids is None
        else [c for c, i in zip(corners, ids.ravel(), strict=True) if i == marker_id]
    )
    if not found:
        seen = "none" if ids is None else ", ".join(str(i) for i in sorted(set(ids.ravel())))
        raise CalibrationError(
            field,
            f"marker {marker_id} of {dictionary} not found in the image (markers seen: {seen})",
        )
    if len(found) > 1:
        raise CalibrationError(field, f"marker {marker_id} appears {len(found)} times; which one?")
    square = [(0.0, 0.0), (size_mm, 0.0), (size_mm, size_mm), (0.0, size_mm)]
    pixels = [(float(x), float(y)) for x, y in found[0].reshape(4, 2)]
    return fit_homography(pixels, square, source="homography:marker")


@dataclass(frozen=True)
class Camera:
    """The pinhole camera behind a homography, where the homography tells: square pixels, the
    principal point at the image centre, and the focal length from the table's right angles
    (a camera looking straight down leaves it unknown). World: table mm, z up to the camera."""

    projection: np.ndarray  # 3 x 4

    @classmethod
    def behind(cls, homography: Homography, width: int, height: int) -> Camera | None:
        plane_to_image = np.linalg.inv(homography.matrix)
        centre = np.array([[1.0, 0.0, -width / 2], [0.0, 1.0, -height / 2], [0.0, 0.0, 1.0]])
        a1, a2 = (centre @ plane_to_image)[:, 0], (centre @ plane_to_image)[:, 1]
        candidates = [  # (how well posed, f^2): the axes at right angles; of equal length
            (abs(a1[2] * a2[2]), -(a1[0] * a2[0] + a1[1] * a2[1]) / (a1[2] * a2[2] or 1e-300)),
            (
                abs(a1[2] ** 2 - a2[2] ** 2),
                -(a1[0] ** 2 + a1[1] ** 2 - a2[0] ** 2 - a2[1] ** 2)
                / ((a1[2] ** 2 - a2[2] ** 2) or 1e-300),
            ),
        ]
        posed, focal_sq = max(candidates)
        scale = float(np.linalg.norm(a1[:2]) + np.linalg.norm(a2[:2])) / 2
        if posed < 1e-9 * scale**2 or not 0.04 * width**2 <= focal_sq <= 400 * width**2:
            return None  # looking (almost) straight down: the focal length cannot be told
        focal = math.sqrt(focal_sq)
        intrinsics = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
        m = np.linalg.inv(intrinsics) @ plane_to_image
        size = (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1])) / 2
        r1, r2, t = m[:, 0] / size, m[:, 1] / size, m[:, 2] / size
        if t[2] < 0:  # the table must lie in front of the camera
            r1, r2, t = -r1, -r2, -t
        r3 = np.cross(r1, r2)
        if (-(np.column_stack([r1, r2, r3]).T @ t))[2] < 0:  # z up: towards the camera
            r3 = -r3
        return cls(intrinsics @ np.column_stack([r1, r2, r3, t]))

    def project(self, points: np.ndarray) -> np.ndarray:
        mapped = np.column_stack([points, np.ones(len(points))]) @ self.projection.T
        return mapped[:, :2] / mapped[:, 2:3]

    def solid_box(self, ring: np.ndarray, tall: float) -> np.ndarray:
        """The image box of an upright solid: its base ``ring`` (table mm) raised ``tall``."""
        n = len(ring)
        points = np.vstack(
            [np.column_stack([ring, np.zeros(n)]), np.column_stack([ring, np.full(n, tall)])]
        )
        image = self.project(points)
        return np.concatenate([image.min(axis=0), image.max(axis=0)])

    def fit_cylinder(
        self, box: Box, start: Point, radius: float, tall_per_radius: float
    ) -> tuple[Point, float] | None:
        """The centre (table mm) and radius of the upright cylinder whose picture is ``box``.

        Two priors make a mug's handle (which does not touch the table) harmless: one side of
        the box may reach past the cylinder's picture at ``HANDLE_WEIGHT`` of the cost (each side
        is tried; the fit that misses least wins: from a box alone a handle on the left and one
        on the right can look alike, so the base may be off by up to about a handle's reach), and
        the height is drawn towards ``tall_per_radius`` radii (a handle behind the mug would
        otherwise read as a taller mug).
        """
        px_per_mm = max(box.width, 1.0) / max(2 * radius, 1e-6)

        def solid(p: np.ndarray) -> tuple[np.ndarray, float]:
            return np.array([p[0], p[1]]) + max(p[2], 0.5) * CIRCLE, max(p[3], 0.0)

        def prior(p: np.ndarray) -> np.ndarray:
            return np.array([TALL_PRIOR * px_per_mm * (p[3] - tall_per_radius * p[2])])

        start_params = np.array([start[0], start[1], radius, tall_per_radius * radius])
        fits = []
        for side in range(4):  # the handle on each side in turn: the fit that misses least wins
            weights = np.ones(4)
            weights[side] = HANDLE_WEIGHT
            fits.append(self._fit(box, start_params, solid, prior, weights))
        found = [f for f in fits if f is not None and f[0][2] > 0.5]
        if not found:
            return None
        params = min(found, key=lambda f: f[1])[0]
        return (float(params[0]), float(params[1])), float(params[2])

    def fit_slab(
        self, box: Box, start: Point, half: Point, thick: float, axes: np.ndarray
    ) -> tuple[Point, Point] | None:
        """The centre (table mm) and half sides of the flat box ``thick`` mm high, its sides along
        ``axes`` (rows: two unit vectors on the table), whose picture is ``box``: four sides of
        the picture for four unknowns. None when no such slab fits."""

        def solid(p: np.ndarray) -> tuple[np.ndarray, float]:
            corners = SQUARE * np.array([max(p[2], 0.5), max(p[3], 0.5)])
            return np.array([p[0], p[1]]) + corners @ axes, thick

        start_params = np.array([start[0], start[1], half[0], half[1]])
        fitted = self._fit(box, start_params, solid, None, np.ones(4))
        if fitted is None or min(fitted[0][2], fitted[0][3]) <= 0.5:
            return None
        params = fitted[0]
        return (float(params[0]), float(params[1])), (float(params[2]), float(params[3]))

    def _fit(
        self,
        box: Box,
        params: np.ndarray,
        solid: Callable[[np.ndarray], tuple[np.ndarray, float]],
        prior: Callable[[np.ndarray], np.ndarray] | None,
        weights: np.ndarray,
    ) -> tuple[np.ndarray, float] | None:
        """Levenberg-Marquardt on the solid's parameters until its picture's box is ``box``
        (each side's miss times its weight): the parameters and what is left of the squared
        misses; None when a side the solid's picture reaches past is off by more than
        ``SOLID_MISS`` of the box's smaller side (a thing of some other shape)."""
        seen = np.array(box.as_list())
        damping = 1e-3

        def residual(p: np.ndarray) -> np.ndarray:
            sides = (self.solid_box(*solid(p)) - seen) * weights
            return sides if prior is None else np.append(sides, prior(p))

        error = residual(params)
        for _ in range(80):
            step = np.maximum(1e-3 * np.abs(params), 0.05)
            jacobian = np.column_stack(
                [(residual(params + np.eye(4)[k] * step[k]) - error) / step[k] for k in range(4)]
            )
            normal = jacobian.T @ jacobian
            delta = np.linalg.solve(
                normal + damping * np.diag(np.diag(normal) + 1e-9), -jacobian.T @ error
            )
            trial = params + delta
            trial_error = residual(trial)
            if trial_error @ trial_error < error @ error:
                params, error, damping = trial, trial_error, damping / 3
                if np.abs(delta).max() < 1e-4 and damping < 1e-3:  # settled, not just damped
                    break
            else:
                damping *= 4
        sides = self.solid_box(*solid(params)) - seen
        if np.maximum(sides * _OUTWARD, 0.0).max() > SOLID_MISS * max(
            1.0, min(box.width, box.height)
        ):
            return None
        return params, float(error @ error)


@dataclass(frozen=True)
class TableFrame:
    """The table plane as the scene measures it (see the module's docstring)."""

    homography: Homography
    centre_px: Point
    mm_per_frame_px: float
    # frame = rotation @ (plane - plane_centre) / mm_per_frame_px + centre_px
    rotation: np.ndarray
    plane_centre: np.ndarray
    camera: Camera | None = None

    @classmethod
    def at(
        cls, homography: Homography, centre_px: Point, image_size: tuple[int, int]
    ) -> TableFrame:
        """The frame whose scale and directions are the image's at ``centre_px``."""
        centre = np.array([centre_px])
        plane_centre = homography.to_plane(centre)[0]
        along_x = homography.to_plane(centre + np.array([1.0, 0.0]))[0] - plane_centre
        along_y = homography.to_plane(centre + np.array([0.0, 1.0]))[0] - plane_centre
        scale = math.sqrt(abs(along_x[0] * along_y[1] - along_x[1] * along_y[0]))
        camera = Camera.behind(homography, *image_size)
        # Seen at a slant, the plane's own axes (a table's sides, when its corners are the
        # points), turned by the quarter turns that bring them nearest the image's: footprints
        # are fitted along them. Seen straight down, the image's axes: its boxes stay boxes.
        angle = math.atan2(along_x[1], along_x[0])
        if camera is not None:
            angle = math.pi / 2 * round(angle / (math.pi / 2))
        rotation = np.array(
            [[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]
        )
        if (rotation @ along_y)[1] < 0:  # the plane's axes are mirrored against the image's
            rotation = np.diag([1.0, -1.0]) @ rotation
        return cls(homography, centre_px, scale, rotation, plane_centre, camera)

    def to_frame(self, pixels: Sequence[Point]) -> list[Point]:
        return self.plane_to_frame(
            self.homography.to_plane(np.asarray(pixels, dtype=float).reshape(-1, 2))
        )

    def plane_to_frame(self, points: np.ndarray) -> list[Point]:
        frame = (np.asarray(points) - self.plane_centre) @ self.rotation.T / self.mm_per_frame_px
        return [(float(x + self.centre_px[0]), float(y + self.centre_px[1])) for x, y in frame]

    def frame_to_plane(self, points: Sequence[Point]) -> np.ndarray:
        frame = np.asarray(points, dtype=float).reshape(-1, 2) - np.asarray(self.centre_px)
        return frame * self.mm_per_frame_px @ self.rotation + self.plane_centre

    def to_image(self, points: Sequence[Point]) -> list[Point]:
        pixels = _apply(np.linalg.inv(self.homography.matrix), self.frame_to_plane(points))
        return [(float(x), float(y)) for x, y in pixels]

    def on_table(self, pixels: Sequence[Point]) -> list[bool]:
        """Whether each image point is safely this side of the horizon."""
        depths = self.homography.depth(np.asarray(pixels, dtype=float).reshape(-1, 2))
        reference = self.homography.depth(np.array([self.centre_px]))[0]
        return [bool(d / reference > HORIZON_MARGIN) for d in depths]

    def footprint(self, box: Box, class_name: str | None) -> tuple[Point, ...]:
        """Where an object with this image box touches the table, as four frame corners in the
        order of ``box_corners`` (far left, far right, near right, near left).

        Seen straight down (no camera can be told from the homography), it is the box itself,
        as an uncalibrated scene has it. Seen at a slant, a round standing thing
        (``ROUND_CLASSES``) is the base of the upright cylinder whose picture fills the box, and a
        flat thing (``FLAT_CLASSES``) the thin slab whose picture does. Otherwise (and when no
        such solid fits) the near side is the box's bottom edge, and the footprint reaches back
        to the box's top for a flat thing (None: the table itself), for a standing one as far as
        its class's depth share of its width, or to the box's top if that is nearer.
        """
        if self.camera is None:  # seen straight down: the box, as an uncalibrated scene has it
            return tuple(self.to_frame(box_corners(box)))
        near_left, near_right, near_mid = self.to_frame(
            [(box.x1, box.y2), (box.x2, box.y2), ((box.x1 + box.x2) / 2, box.y2)]
        )
        top = ((box.x1 + box.x2) / 2, box.y1)
        far_mid = self.to_frame([top])[0] if self.on_table([top])[0] else None
        width = math.dist(near_left, near_right)
        flat = class_name is None or class_name in FLAT_CLASSES
        standing = width * STANDING_DEPTH.get(class_name or "", DEFAULT_STANDING_DEPTH)
        if far_mid is None or math.dist(near_mid, far_mid) == 0:
            depth, away = standing, self._away(near_mid)
        else:
            reach = math.dist(near_mid, far_mid)
            away = ((far_mid[0] - near_mid[0]) / reach, (far_mid[1] - near_mid[1]) / reach)
            depth = reach if flat else min(reach, standing)
        far_left = (near_left[0] + depth * away[0], near_left[1] + depth * away[1])
        far_right = (near_right[0] + depth * away[0], near_right[1] + depth * away[1])
        by_edge = (far_left, far_right, near_right, near_left)
        if class_name is None:
            return by_edge
        middle = (
            ((near_mid[0] + far_mid[0]) / 2, (near_mid[1] + far_mid[1]) / 2)
            if far_mid
            else near_mid
        )
        if class_name in ROUND_CLASSES:
            centre = (near_mid[0] + width / 2 * away[0], near_mid[1] + width / 2 * away[1])
            return self._cylinder(box, class_name, centre, width / 2) or by_edge
        if class_name in FLAT_CLASSES:
            return self._slab(box, class_name, middle, (width / 2, depth / 2)) or by_edge
        return by_edge

    def _frame_square(self, centre_mm: Point, half_mm: Point) -> tuple[Point, ...]:
        (cx, cy) = self.plane_to_frame(np.array([centre_mm]))[0]
        hx, hy = half_mm[0] / self.mm_per_frame_px, half_mm[1] / self.mm_per_frame_px
        return ((cx - hx, cy - hy), (cx + hx, cy - hy), (cx + hx, cy + hy), (cx - hx, cy + hy))

    def _cylinder(
        self, box: Box, class_name: str, centre: Point, half_width: float
    ) -> tuple[Point, ...] | None:
        """A round thing's base (the square around it), from the cylinder fitted to its box."""
        assert self.camera is not None
        start = self.frame_to_plane([centre])[0]
        fitted = self.camera.fit_cylinder(
            box,
            (float(start[0]), float(start[1])),
            half_width * self.mm_per_frame_px,
            TALL_PER_RADIUS.get(class_name, DEFAULT_TALL_PER_RADIUS),
        )
        if fitted is None:
            return None
        centre_mm, radius_mm = fitted
        return self._frame_square(centre_mm, (radius_mm, radius_mm))

    def _slab(
        self, box: Box, class_name: str, centre: Point, half: Point
    ) -> tuple[Point, ...] | None:
        """A flat thing's footprint, from the slab fitted to its box (sides along the frame)."""
        assert self.camera is not None
        start = self.frame_to_plane([centre])[0]
        fitted = self.camera.fit_slab(
            box,
            (float(start[0]), float(start[1])),
            (half[0] * self.mm_per_frame_px, half[1] * self.mm_per_frame_px),
            SLAB_MM.get(class_name, DEFAULT_SLAB_MM),
            self.rotation,
        )
        if fitted is None:
            return None
        return self._frame_square(*fitted)

    def _away(self, near: Point) -> Point:
        """The frame direction of 'up the image' (away from the camera) at a frame point."""
        pixel = self.to_image([near])[0]
        ahead = self.to_frame([(pixel[0], pixel[1] - 1.0)])[0]
        length = math.dist(near, ahead) or 1.0
        return ((ahead[0] - near[0]) / length, (ahead[1] - near[1]) / length)

    def pull_in(self, pixel: Point, towards: Point) -> Point:
        """``pixel``, or the point on the way to ``towards`` where the table is still in front
        of the camera (an image corner above the horizon is no place on the table)."""
        if self.on_table([pixel])[0]:
            return pixel
        near, far = 0.0, 1.0  # share of the way from ``towards`` back to ``pixel``
        for _ in range(30):
            middle = (near + far) / 2
            point = (
                towards[0] + (pixel[0] - towards[0]) * middle,
                towards[1] + (pixel[1] - towards[1]) * middle,
            )
            near, far = (middle, far) if self.on_table([point])[0] else (near, middle)
        return (
            towards[0] + (pixel[0] - towards[0]) * near,
            towards[1] + (pixel[1] - towards[1]) * near,
        )
