"""Measurement on the table plane (SPEC 10), checked against generated scenes' true footprints.

Each held-out scene is judged the way ``evaluate`` judges given detections (``build_scene`` and
``judge``), from its true label boxes, twice: calibrated with ``calibration.points`` at the four
table corners (their pixels from the truth, their mm from the table's size) and the table's
outline in the picture as ``surface``; and, for comparison, with the one scale a job could give
before (``mm_per_px`` at the table centre) and the table box. Every mug's gap to the nearest
object of each class and its edge distance are compared with the true table-plane values
(``training.synthetic.truth.plane_truth``), and each rule's verdict with the verdict those true
values give. The detector is not involved: this measures the geometry, not the detections.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from positioning.geometry import Box
from positioning.plane import CalibrationError, Homography, find_marker, fit_homography
from positioning.scene import Detection, Scene, build_scene
from rules.judge import judge
from training.synthetic import SceneOptions, generate_scene
from training.synthetic.truth import MUG_CLASS, fixed_rules, plane_verdicts

# gaps and edge distances shorter than this are left out of the relative errors (a 3 mm error on
# a 10 mm gap is 30 %, and says nothing about the plane)
MIN_TRUE_MM = 20.0


def clip_to_image(
    points: Sequence[Sequence[float]], width: int, height: int
) -> list[tuple[float, float]]:
    """The polygon cut to the picture (Sutherland-Hodgman against its four sides)."""
    polygon = [(float(x), float(y)) for x, y in points]
    for axis, limit, keep_below in (
        (0, 0.0, False),
        (0, width, True),
        (1, 0.0, False),
        (1, height, True),
    ):

        def inside(
            p: tuple[float, float], axis: int = axis, limit: float = limit, below: bool = keep_below
        ) -> bool:
            return p[axis] <= limit if below else p[axis] >= limit

        result: list[tuple[float, float]] = []
        for index, current in enumerate(polygon):
            previous = polygon[index - 1]
            if inside(current) != inside(previous):
                t = (limit - previous[axis]) / (current[axis] - previous[axis])
                result.append(
                    (
                        previous[0] + t * (current[0] - previous[0]),
                        previous[1] + t * (current[1] - previous[1]),
                    )
                )
            if inside(current):
                result.append(current)
        polygon = result
    return polygon


def _in_front(truth: dict[str, Any], corners: Sequence[Sequence[float]]) -> list[list[float]]:
    """The table's outline in the picture's plane, with the part behind the camera cut off
    (a corner far beyond the view can project from behind it): the table polygon cut at the
    plane a little in front of the camera, then projected."""
    to_plane = np.array(truth["plane"]["homography"])
    to_image = np.linalg.inv(to_plane)
    table_w, table_d = truth["table"]["size_mm"]
    table = [(0.0, 0.0), (table_w, 0.0), (table_w, table_d), (0.0, table_d)]
    depth = [float(to_image[2] @ (x, y, 1.0)) for x, y in table]
    sign = 1.0 if sum(d > 0 for d in depth) >= 2 else -1.0
    least = 0.05 * max(abs(d) for d in depth)
    kept: list[tuple[float, float]] = []
    for index, point in enumerate(table):
        previous, d_prev, d_here = table[index - 1], sign * depth[index - 1], sign * depth[index]
        if (d_here >= least) != (d_prev >= least):
            t = (least - d_prev) / (d_here - d_prev)
            kept.append(
                (
                    previous[0] + t * (point[0] - previous[0]),
                    previous[1] + t * (point[1] - previous[1]),
                )
            )
        if d_here >= least:
            kept.append(point)
    mapped = np.column_stack([np.array(kept), np.ones(len(kept))]) @ to_image.T
    return [[float(u), float(v)] for u, v in mapped[:, :2] / mapped[:, 2:3]]


def _scenes(truth: dict[str, Any], marker: Homography | None = None) -> tuple[Scene, Scene]:
    """The scene calibrated (by ``marker``'s homography when given, else by the table's corners)
    and the scene at the single scale."""
    width, height = truth["image"]["width"], truth["image"]["height"]
    table_w, table_d = truth["table"]["size_mm"]
    detections = [
        Detection(f"t{index}", o["class"], o["class_id"], 1.0, Box(*o["box"]))
        for index, o in enumerate(truth["objects"])
    ]
    mugs = [(d, None) for d in detections if d.class_name == MUG_CLASS]
    corners = truth["table"]["corners_px"]
    outline = clip_to_image(_in_front(truth, corners), width, height)
    if truth["table"]["whole_table_in_view"]:
        points, mm = corners, [(0.0, 0.0), (table_w, 0.0), (table_w, table_d), (0.0, table_d)]
    else:  # the table's corners in the picture (where it runs out of it: on the border)
        points = outline
        to_plane = np.array(truth["plane"]["homography"])
        mapped = np.column_stack([np.array(points), np.ones(len(points))]) @ to_plane.T
        mm = [(float(x), float(y)) for x, y in mapped[:, :2] / mapped[:, 2:3]]
    homography = marker if marker is not None else fit_homography(points, mm)
    surface = [(min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0)) for x, y in outline]
    calibrated = build_scene(
        width, height, detections, mugs, polygon_norm=surface, homography=homography
    )
    plain = build_scene(width, height, detections, mugs, mm_per_px=truth["mm_per_px"])
    return calibrated, plain


def _compare(scene: Scene, truth: dict[str, Any], into: dict[str, list[float]]) -> None:
    assert scene.scale.mm_per_px is not None
    mm = scene.scale.mm_per_px
    true_mugs = {m["label"]: m for m in truth["plane"]["mugs"]}
    verdicts = plane_verdicts(truth["plane"]["mugs"])
    results = judge(scene, fixed_rules()).results
    for mug in scene.mugs:
        label = int(mug.detection.id[1:])
        true = true_mugs[label]
        for neighbour in mug.nearest:
            name = (
                "mug"
                if neighbour.detection.class_name == MUG_CLASS
                else neighbour.detection.class_name
            )
            gap = true["gaps_mm"].get(name)
            if gap is not None and gap >= MIN_TRUE_MM:
                into["gap"].append(abs(neighbour.gap_px * mm - gap) / gap)
            shape_gap = true["shape_gaps_mm"].get(name)
            if shape_gap is not None and shape_gap >= MIN_TRUE_MM:
                into["shape_gap"].append(abs(neighbour.gap_px * mm - shape_gap) / shape_gap)
        edge = true["edge_mm"]
        if edge is not None and mug.edge_distance_px is not None and edge >= MIN_TRUE_MM:
            into["edge"].append(abs(mug.edge_distance_px * mm - edge) / edge)
        for result in results:
            expected = verdicts.get((label, result.rule.rule_id))
            if result.mug_id == mug.id and expected is not None:
                into["agree"].append(float(result.status == expected))


def _find(jpeg: bytes, marker: dict[str, Any] | None) -> Homography | None:
    """The marker's homography from the picture as a job would send it (None: not found)."""
    if marker is None:
        return None
    gray = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    try:
        return find_marker(gray, marker["dictionary"], marker["id"], marker["size_mm"])
    except CalibrationError:
        return None


def _summary(values: Iterable[float]) -> dict[str, float | int | None]:
    array = np.array(list(values))
    if not len(array):
        return {"n": 0, "median": None, "p95": None}
    return {
        "n": len(array),
        "median": round(float(np.median(array)), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
    }


def measure_plane(
    count: int, seed: int, view: str = "slanted", marker: bool = False
) -> dict[str, Any]:
    """Relative errors (median, p95) of gaps and edge distances, and verdict agreement, with the
    table-plane calibration and with the single scale, over ``count`` scenes of ``seed``.

    ``marker``: the scenes have an ArUco marker on the table, and the calibration is the marker
    found in the scene's JPEG (``calibration.marker``); a scene whose marker is not found (or
    has no room for one) is counted and left out."""
    found: dict[str, dict[str, list[float]]] = {
        name: {"gap": [], "shape_gap": [], "edge": [], "agree": []}
        for name in ("calibrated", "single_scale")
    }
    missed = 0
    for index in range(count):
        scene = generate_scene(seed, index, SceneOptions(view=view, marker=marker))  # type: ignore[arg-type]
        truth = scene.truth
        found_marker = None
        if marker:
            found_marker = _find(scene.jpeg(), truth["marker"])
            if found_marker is None:
                missed += 1
                continue
        calibrated, plain = _scenes(truth, found_marker)
        _compare(calibrated, truth, found["calibrated"])
        _compare(plain, truth, found["single_scale"])
    return {
        "seed": seed,
        "count": count,
        "view": view,
        "calibration": "marker" if marker else "points",
        "marker_not_found": missed,
        **{
            name: {
                "gap_error": _summary(values["gap"]),
                "edge_error": _summary(values["edge"]),
                "shape_gap_error": _summary(values["shape_gap"]),
                "verdict_agreement": round(float(np.mean(values["agree"])), 4)
                if values["agree"]
                else None,
                "verdicts": len(values["agree"]),
            }
            for name, values in found.items()
        },
    }


def describe_plane(report: dict[str, Any]) -> str:
    lines = [f"{report['count']} {report['view']} scenes of seed {report['seed']}, true boxes:"]
    calibrated = (
        f"calibration.marker (found in {report['count'] - report['marker_not_found']} scenes)"
        if report["calibration"] == "marker"
        else "calibration.points (4 table corners)"
    )
    for name, title in (
        ("calibrated", calibrated),
        ("single_scale", "one mm_per_px (at the table centre)"),
    ):
        part = report[name]
        lines.append(f"  {title}:")
        for key, what in (
            ("gap_error", "gap"),
            ("edge_error", "edge distance"),
            ("shape_gap_error", "gap to the true shapes"),
        ):
            figures = part[key]
            if figures["n"]:
                median, p95, n = figures["median"], figures["p95"], figures["n"]
                lines.append(f"    {what} error: median {median:.1%}, p95 {p95:.1%} (n={n})")
        lines.append(
            f"    verdict agreement: {part['verdict_agreement']:.3f} ({part['verdicts']} verdicts)"
        )
    return "\n".join(lines)
