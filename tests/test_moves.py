"""Property tests for moves (SPEC 4.2) on random boxes.

- a failed rule's adjustment, applied to the mug, makes that rule pass;
- it is no more than 5% (or 2 px) longer than the shortest passing move, found by brute force over
  every centre on a 1 px grid;
- an optimal position makes every spatial rule of the mug pass at once, with the mug on the surface.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from positioning.geometry import Box
from positioning.scene import Detection, Scene, build_scene
from rules.evaluate import evaluate
from rules.judge import judge
from rules.model import Rule, rule_from_dict

WIDTH, HEIGHT = 400, 300  # the table; the picture shows a little floor around it (FRAME)
FRAME = 20  # more than the 3 % of the picture that counts as its border
IMAGE = (WIDTH + 2 * FRAME, HEIGHT + 2 * FRAME)
TABLE = Detection(
    "table", "dining table", 60, 0.9, Box(FRAME, FRAME, FRAME + WIDTH, FRAME + HEIGHT)
)
GRID = np.stack(np.meshgrid(np.arange(-150.0, 551.0), np.arange(-150.0, 451.0)), axis=-1)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@st.composite
def boxes(draw: st.DrawFn, cls: str, min_size: int = 10, max_size: int = 120) -> Detection:
    w = draw(st.integers(min_size, max_size))
    h = draw(st.integers(min_size, max_size))
    x = draw(st.integers(0, WIDTH - w)) + FRAME
    y = draw(st.integers(0, HEIGHT - h)) + FRAME
    index = draw(st.integers(0, 10_000))
    return Detection(f"{cls[:3]}{index}", cls, 0, 0.9, Box(x, y, x + w, y + h))


def make_scene(mug: Detection, others: list[Detection], extra_mugs: list[Detection]) -> Scene:
    mugs = [(mug, None), *((m, None) for m in extra_mugs)]
    return build_scene(*IMAGE, [TABLE, mug, *others, *extra_mugs], mugs, mm_per_px=None)


def moved(scene: Scene, detection_id: str, dx: float, dy: float) -> Scene:
    """The same scene with one mug translated; mug ids may be renumbered, so match by detection."""
    detections = [
        Detection(d.id, d.class_name, d.class_id, d.confidence, d.box.translate(dx, dy))
        if d.id == detection_id
        else d
        for d in scene.detections
    ]
    mug_ids = {m.detection.id for m in scene.mugs}
    mugs = [(d, None) for d in detections if d.id in mug_ids]
    return build_scene(*IMAGE, detections, mugs, mm_per_px=None)


def status_of(rule: Rule, scene: Scene, detection_id: str) -> str:
    (mug_id,) = [m.id for m in scene.mugs if m.detection.id == detection_id]
    (result,) = [r for r in evaluate(rule, scene, None) if r.mug_id == mug_id]
    return result.status


def grid_gap(centres: np.ndarray, half: tuple[float, float], box: Box) -> np.ndarray:
    hw, hh = half
    dx = np.maximum(0, np.maximum(box.x1 - (centres[..., 0] + hw), (centres[..., 0] - hw) - box.x2))
    dy = np.maximum(0, np.maximum(box.y1 - (centres[..., 1] + hh), (centres[..., 1] - hh) - box.y2))
    return np.hypot(dx, dy)


def passing_grid(rule: Rule, scene: Scene, mug: Detection) -> np.ndarray:
    """Which centres of the 1 px grid make the rule pass (vectorised, independent of the solver)."""
    half = (mug.box.width / 2, mug.box.height / 2)
    cx, cy = GRID[..., 0], GRID[..., 1]
    s = scene.surface.box
    if rule.type == "edge_margin":
        d = rule.distance.value
        return (
            (cx - half[0] - s.x1 >= d)
            & (s.x2 - cx - half[0] >= d)
            & (cy - half[1] - s.y1 >= d)
            & (s.y2 - cy - half[1] >= d)
        )
    if rule.type == "zone":
        x1, x2 = {"left_half": (0, 0.5), "right_half": (0.5, 1), "center": (1 / 3, 2 / 3)}.get(
            rule.zone, (0, 1)
        )
        y1, y2 = {"top_half": (0, 0.5), "bottom_half": (0.5, 1), "center": (1 / 3, 2 / 3)}.get(
            rule.zone, (0, 1)
        )
        inside = (
            (cx >= s.x1 + x1 * s.width)
            & (cx <= s.x1 + x2 * s.width)
            & (cy >= s.y1 + y1 * s.height)
            & (cy <= s.y1 + y2 * s.height)
        )
        return inside if rule.mode == "inside" else ~inside
    if rule.type == "spacing":
        others = [m.box for m in scene.mugs if m.detection.id != mug.id]
    else:
        others = [d.box for d in scene.objects_of(rule.object) if d.id != mug.id]
    d = rule.distance.value
    gaps = [grid_gap(GRID, half, box) for box in others]
    if rule.type == "max_distance":
        return np.any([g <= d for g in gaps], axis=0) if gaps else np.zeros(cx.shape, bool)
    return np.all([g >= d for g in gaps], axis=0) if gaps else np.ones(cx.shape, bool)


def shortest_by_brute_force(rule: Rule, scene: Scene, mug: Detection) -> float:
    ok = passing_grid(rule, scene, mug)
    cx, cy = mug.box.center
    distances = np.hypot(GRID[..., 0] - cx, GRID[..., 1] - cy)
    return float(distances[ok].min())


RULES = st.one_of(
    st.builds(
        lambda d, o: rule_from_dict({"type": "min_distance", "object": o, "distance": f"{d} px"}),
        st.integers(1, 80),
        st.sampled_from(["laptop", "keyboard"]),
    ),
    st.builds(
        lambda d: rule_from_dict(
            {"type": "max_distance", "object": "laptop", "distance": f"{d} px"}
        ),
        st.integers(0, 60),
    ),
    st.builds(
        lambda d: rule_from_dict({"type": "edge_margin", "distance": f"{d} px"}),
        st.integers(0, 60),
    ),
    st.builds(
        lambda z, m: rule_from_dict({"type": "zone", "zone": z, "mode": m}),
        st.sampled_from(["left_half", "right_half", "top_half", "bottom_half", "center"]),
        st.sampled_from(["inside", "outside"]),
    ),
    st.builds(
        lambda d: rule_from_dict({"type": "spacing", "distance": f"{d} px"}),
        st.integers(1, 80),
    ),
)


@PROPERTY
@given(
    rule=RULES,
    mug=boxes("cup", 20, 80),
    laptops=st.lists(boxes("laptop"), min_size=1, max_size=3),
    keyboards=st.lists(boxes("keyboard"), max_size=2),
    others=st.lists(boxes("cup", 20, 80), max_size=2),
)
def test_an_adjustment_fixes_its_rule_and_is_nearly_the_shortest(
    rule: Rule,
    mug: Detection,
    laptops: list[Detection],
    keyboards: list[Detection],
    others: list[Detection],
) -> None:
    ids = [d.id for d in [mug, *laptops, *keyboards, *others]]
    assume(len(set(ids)) == len(ids))
    scene = make_scene(mug, [*laptops, *keyboards], others)
    assume(status_of(rule, scene, mug.id) == "fail")
    (mug_id,) = [m.id for m in scene.mugs if m.detection.id == mug.id]
    (result,) = [r for r in evaluate(rule, scene, None) if r.mug_id == mug_id]
    move = result.adjustment
    if move is None:
        assert not passing_grid(rule, scene, mug).any()
        return
    after = moved(scene, mug.id, round(move.dx, 2), round(move.dy, 2))
    assert status_of(rule, after, mug.id) == "pass"
    shortest = shortest_by_brute_force(rule, scene, mug)
    assert move.distance <= max(shortest * 1.05, shortest + 2)


@PROPERTY
@given(
    mug=boxes("cup", 20, 60),
    laptops=st.lists(boxes("laptop", 10, 80), min_size=1, max_size=2),
    others=st.lists(boxes("cup", 20, 60), max_size=2),
    margin=st.integers(0, 40),
    gap_px=st.integers(1, 60),
    zone=st.sampled_from(["left_half", "right_half", "top_half", "bottom_half"]),
)
def test_an_optimal_position_satisfies_every_spatial_rule_at_once(
    mug: Detection,
    laptops: list[Detection],
    others: list[Detection],
    margin: int,
    gap_px: int,
    zone: str,
) -> None:
    ids = [d.id for d in [mug, *laptops, *others]]
    assume(len(set(ids)) == len(ids))
    rules = [
        rule_from_dict({"type": "min_distance", "object": "laptop", "distance": f"{gap_px} px"}),
        rule_from_dict({"type": "edge_margin", "distance": f"{margin} px"}),
        rule_from_dict({"type": "zone", "zone": zone}),
        rule_from_dict({"type": "spacing", "distance": "5 px"}),
    ]
    scene = make_scene(mug, laptops, others)
    verdict = judge(scene, rules)
    (mug_id,) = [m.id for m in scene.mugs if m.detection.id == mug.id]
    (placement,) = [p for p in verdict.optimal_positions if p.mug_id == mug_id]
    ok = np.all([passing_grid(rule, scene, mug) for rule in rules], axis=0)
    if placement.move is None:
        assert not ok.any()
        return
    after = moved(scene, mug.id, round(placement.move.dx, 2), round(placement.move.dy, 2))
    for rule in rules:
        assert status_of(rule, after, mug.id) == "pass", rule
    box = next(d.box for d in after.detections if d.id == mug.id)
    surface = after.surface.box
    assert surface.x1 <= box.x1 and box.x2 <= surface.x2
    assert surface.y1 <= box.y1 and box.y2 <= surface.y2
    cx, cy = mug.box.center
    shortest = float(np.hypot(GRID[..., 0] - cx, GRID[..., 1] - cy)[ok].min())
    assert placement.move.distance <= max(shortest * 1.05, shortest + 2)


@PROPERTY
@given(
    severities=st.lists(
        st.tuples(st.sampled_from(["info", "warning", "critical"]), st.booleans()), max_size=8
    )
)
def test_safety_score_follows_the_spec_formula(severities: list[tuple[str, bool]]) -> None:
    laptop = Detection("d1", "laptop", 63, 0.9, Box(0, 0, 100, 100))
    mug = Detection("d2", "cup", 41, 0.9, Box(150, 0, 200, 50))  # 50 px from the laptop
    scene = make_scene(mug, [laptop], [])
    rules = [
        rule_from_dict(
            {
                "type": "min_distance",
                "object": "laptop",
                "distance": f"{80 if fails else 20} px",
                "severity": severity,
                "id": f"r{i}",
            }
        )
        for i, (severity, fails) in enumerate(severities)
    ]
    verdict = judge(scene, rules)
    weights = {"info": 1, "warning": 2, "critical": 3}
    total = sum(weights[s] for s, _ in severities)
    failed = sum(weights[s] for s, fails in severities if fails)
    expected = 1.0 if total == 0 else 1 - failed / total
    assert verdict.safety_score == pytest.approx(expected)
    assert verdict.compliant == (failed == 0)
    assert math.isfinite(verdict.safety_score)
