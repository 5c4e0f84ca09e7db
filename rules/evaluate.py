"""Judge one rule on one scene (SPEC 4.1): status, measured and required values, a message, a move.

Spatial rules are also turned into constraints on where the mug's centre may stand
(``positioning.regions``); the same constraints give each failed rule its ``adjustment`` here and
every mug its optimal position in ``rules.judge``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from positioning.geometry import Box, Point, edge_distance, gap
from positioning.regions import (
    Constraint,
    Polygon,
    Rect,
    RoundedRect,
    SearchBudget,
    SearchBudgetExhausted,
    nearest_feasible,
)
from positioning.scene import MugPlacement, Scene
from rules.model import (
    AttributeRule,
    CountRule,
    Distance,
    EdgeMarginRule,
    MaxDistanceRule,
    MinDistanceRule,
    Rule,
    SpacingRule,
    ZoneRule,
)

Status = Literal["pass", "fail", "unknown"]
# A tiny tolerance so a distance equal to the limit (up to float rounding) counts as equal.
_TOLERANCE = 1e-6
NO_SCALE_HINT = "give calibration.mm_per_px or a reference object to measure in mm"


@dataclass(frozen=True)
class Move:
    """A translation of the mug in pixels (x right, y down)."""

    dx: float
    dy: float

    @property
    def distance(self) -> float:
        return math.hypot(self.dx, self.dy)


@dataclass(frozen=True)
class Measured:
    value: float
    unit: str


@dataclass(frozen=True)
class Required:
    op: str
    value: float | list[float] | list[list[float]]
    unit: str


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    mug_id: str | None
    status: Status
    measured: Measured | None
    required: Required
    message: str
    adjustment: Move | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


AttributeScores = Mapping[tuple[str, str], float]


def evaluate(
    rule: Rule,
    scene: Scene,
    attribute_scores: AttributeScores | None,
    budget: SearchBudget | None = None,
) -> list[RuleResult]:
    """One result per mug (per-mug rules) or one for the image (``count``); the moves of failed
    rules draw on ``budget`` (the analysis' placement budget)."""
    if isinstance(rule, CountRule):
        return [_count(rule, scene)]
    budget = budget or SearchBudget()
    results = []
    for mug in scene.mugs:
        if isinstance(rule, AttributeRule):
            results.append(_attribute(rule, mug, attribute_scores))
        else:
            results.append(_spatial(rule, mug, scene, budget))
    return results


def mug_constraints(rule: Rule, mug: MugPlacement, scene: Scene) -> list[Constraint] | None:
    """Where this mug's centre may stand for the rule to pass; None when it cannot be known."""
    half_w, half_h = mug.box.width / 2, mug.box.height / 2
    if isinstance(rule, ZoneRule):
        return [Constraint((_zone_region(rule, scene),), inside=rule.mode == "inside")]
    required = _required_px(rule.distance, scene)  # type: ignore[union-attr]
    if required is None:
        return None
    if isinstance(rule, EdgeMarginRule):
        s = scene.surface.box
        allowed = Rect(s.x1, s.y1, s.x2, s.y2).grow(-(half_w + required), -(half_h + required))
        return [Constraint((allowed,), inside=True)]
    if isinstance(rule, SpacingRule):
        others = [m.box for m in scene.mugs if m.id != mug.id]
        return [_keep_away(others, half_w, half_h, required)] if required > 0 else []
    assert isinstance(rule, MinDistanceRule | MaxDistanceRule)
    objects = _objects(rule.object, mug, scene)
    if isinstance(rule, MinDistanceRule):
        return [_keep_away(objects, half_w, half_h, required)] if required > 0 else []
    reach = tuple(RoundedRect(_grown(box, half_w, half_h), required) for box in objects)
    return [Constraint(reach, inside=True)]


def surface_constraint(mug: MugPlacement, scene: Scene) -> Constraint:
    """The whole mug box stays on the surface."""
    s = scene.surface.box
    inner = Rect(s.x1, s.y1, s.x2, s.y2).grow(-mug.box.width / 2, -mug.box.height / 2)
    return Constraint((inner,), inside=True)


def _adjustment(rule: Rule, mug: MugPlacement, scene: Scene, budget: SearchBudget) -> Move | None:
    """The move that makes this rule alone pass; none once the placement budget is spent."""
    try:
        budget.spend(len(scene.detections))  # building the constraints: one region an object
        target = nearest_feasible(
            mug.center, mug_constraints(rule, mug, scene) or [], budget=budget
        )
    except SearchBudgetExhausted:
        return None
    return move_to(mug, target)


def move_to(mug: MugPlacement, target: Point | None) -> Move | None:
    if target is None:
        return None
    return Move(target[0] - mug.center[0], target[1] - mug.center[1])


# ------------------------------------------------------------------ per rule type


def _spatial(rule: Rule, mug: MugPlacement, scene: Scene, budget: SearchBudget) -> RuleResult:
    if isinstance(rule, ZoneRule):
        return _zone(rule, mug, scene, budget)
    assert isinstance(rule, MinDistanceRule | MaxDistanceRule | EdgeMarginRule | SpacingRule)
    measured_px, what = _measure(rule, mug, scene)
    distance = rule.distance
    op = "<=" if isinstance(rule, MaxDistanceRule) else ">="
    required = Required(op=op, value=distance.value, unit=distance.unit)
    if measured_px is None:
        # no other mug, or the object is absent: nothing to keep away from, or to stay near
        if isinstance(rule, SpacingRule):
            message = f"{mug.id} is the only mug, so it is spaced from every other."
            return RuleResult(rule, mug.id, "pass", None, required, message)
        absent = rule.object  # type: ignore[union-attr]
        if isinstance(rule, MinDistanceRule):
            message = f"{mug.id}: no {absent} in view, so nothing to keep away from."
            return RuleResult(rule, mug.id, "pass", None, required, message)
        message = f"{mug.id}: no {absent} in view, so it cannot be within {distance} of one."
        return RuleResult(rule, mug.id, "fail", None, required, message)
    required_px = _required_px(distance, scene)
    if required_px is None:
        message = (
            f"{mug.id} is {measured_px:.0f} px {what}, but {distance} cannot be checked "
            f"without a scale ({NO_SCALE_HINT})."
        )
        return RuleResult(
            rule, mug.id, "unknown", Measured(round(measured_px, 2), "px"), required, message
        )
    passed = (
        measured_px <= required_px + _TOLERANCE
        if op == "<="
        else measured_px >= required_px - _TOLERANCE
    )
    shown = distance.in_unit(measured_px, scene.scale.mm_per_px, scene.width)
    assert shown is not None
    measured = Measured(round(shown, 2), distance.unit)
    value = _fmt(shown, distance.unit)
    if passed:
        bound = "at most" if op == "<=" else "at least"
        message = f"{mug.id} is {value} {what} ({bound} {distance} required)."
        return RuleResult(rule, mug.id, "pass", measured, required, message)
    if isinstance(rule, MaxDistanceRule):
        message = f"{mug.id} is {value} {what}; keep it within {distance}."
    elif isinstance(rule, EdgeMarginRule) and measured_px < 0:
        message = f"{mug.id} sticks {_fmt(-shown, distance.unit)} over the table edge; keep it {distance} in."
    elif isinstance(rule, EdgeMarginRule):
        message = f"{mug.id} is {value} {what}; keep it at least {distance} in."
    else:
        message = f"{mug.id} is {value} {what}; keep it at least {distance} away."
    adjustment = _adjustment(rule, mug, scene, budget)
    return RuleResult(rule, mug.id, "fail", measured, required, message, adjustment)


def _measure(rule: Rule, mug: MugPlacement, scene: Scene) -> tuple[float | None, str]:
    """The measured pixel distance for a distance rule and how to say what it is from."""
    if isinstance(rule, EdgeMarginRule):
        return edge_distance(mug.box, scene.surface.box), "from the table edge"
    if isinstance(rule, SpacingRule):
        if mug.id not in scene.nearest_mug:
            return None, ""
        nearest, distance = scene.nearest_mug[mug.id]
        return distance, f"from {nearest.id}"
    assert isinstance(rule, MinDistanceRule | MaxDistanceRule)
    objects = _objects(rule.object, mug, scene)
    if not objects:
        return None, ""
    return min(gap(mug.box, box) for box in objects), f"from the {rule.object}"


def _zone(rule: ZoneRule, mug: MugPlacement, scene: Scene, budget: SearchBudget) -> RuleResult:
    region = _zone_region(rule, scene)
    depth = -region.signed_distance(mug.center)  # > 0 inside, < 0 outside
    inside = depth >= -_TOLERANCE
    passed = inside if rule.mode == "inside" else not inside
    name = rule.zone.replace("_", " ") if isinstance(rule.zone, str) else "the zone"
    zone_text = f"the {name}" if isinstance(rule.zone, str) else name
    corners = _zone_points(region)
    required = Required(op=rule.mode, value=corners, unit="px")
    measured = Measured(round(depth, 2), "px")
    where = "inside" if inside else "outside"
    if passed:
        message = f"{mug.id}'s centre is {where} {zone_text} (required {rule.mode})."
        return RuleResult(rule, mug.id, "pass", measured, required, message)
    verb = "into" if rule.mode == "inside" else "out of"
    message = f"{mug.id}'s centre is {where} {zone_text}; move it {verb} {zone_text}."
    adjustment = _adjustment(rule, mug, scene, budget)
    return RuleResult(rule, mug.id, "fail", measured, required, message, adjustment)


def _count(rule: CountRule, scene: Scene) -> RuleResult:
    count = len(scene.mugs)
    if rule.min is not None and rule.max is not None:
        required = Required(op="between", value=[rule.min, rule.max], unit="mugs")
        bound = f"between {rule.min} and {rule.max}"
    elif rule.max is not None:
        required = Required(op="<=", value=rule.max, unit="mugs")
        bound = f"at most {rule.max}"
    else:
        assert rule.min is not None
        required = Required(op=">=", value=rule.min, unit="mugs")
        bound = f"at least {rule.min}"
    passed = (rule.min is None or count >= rule.min) and (rule.max is None or count <= rule.max)
    noun = "mug" if count == 1 else "mugs"
    message = f"{count} {noun} found ({bound} allowed)."
    return RuleResult(
        rule, None, "pass" if passed else "fail", Measured(count, "mugs"), required, message
    )


def _attribute(
    rule: AttributeRule, mug: MugPlacement, scores: AttributeScores | None
) -> RuleResult:
    required = Required(op=">=", value=rule.threshold, unit="probability")
    score = None if scores is None else scores.get((rule.rule_id, mug.id))
    if score is None:
        message = f"{mug.id}: '{rule.prompt}' needs CLIP on the image; it was not run."
        return RuleResult(rule, mug.id, "unknown", None, required, message)
    passed = score >= rule.threshold
    verdict = "looks like" if passed else "does not look like"
    message = (
        f"{mug.id} {verdict} '{rule.prompt}' (CLIP {score:.2f} against '{rule.negative}', "
        f"needs {rule.threshold:.2f})."
    )
    return RuleResult(
        rule, mug.id, "pass" if passed else "fail", Measured(round(score, 4), "probability"),
        required, message,
    )  # fmt: skip


# ------------------------------------------------------------------ helpers


def _objects(class_name: str, mug: MugPlacement, scene: Scene) -> list[Box]:
    return [d.box for d in scene.objects_of(class_name) if d.id != mug.detection.id]


def _grown(box: Box, half_w: float, half_h: float) -> Rect:
    return Rect(box.x1 - half_w, box.y1 - half_h, box.x2 + half_w, box.y2 + half_h)


def _keep_away(boxes: list[Box], half_w: float, half_h: float, distance: float) -> Constraint:
    regions = tuple(RoundedRect(_grown(box, half_w, half_h), distance) for box in boxes)
    return Constraint(regions, inside=False)


def _required_px(distance: Distance, scene: Scene) -> float | None:
    return distance.to_px(scene.scale.mm_per_px, scene.width)


def _zone_region(rule: ZoneRule, scene: Scene) -> Rect | Polygon:
    s = scene.surface.box
    if isinstance(rule.zone, list):
        return Polygon(tuple((s.x1 + x * s.width, s.y1 + y * s.height) for x, y in rule.zone))
    w, h = s.width, s.height
    x_band = {
        "left_half": (0, 1 / 2),
        "right_half": (1 / 2, 1),
        "left_third": (0, 1 / 3),
        "center_third": (1 / 3, 2 / 3),
        "right_third": (2 / 3, 1),
        "center": (1 / 3, 2 / 3),
    }.get(rule.zone, (0, 1))
    y_band = {"top_half": (0, 1 / 2), "bottom_half": (1 / 2, 1), "center": (1 / 3, 2 / 3)}.get(
        rule.zone, (0, 1)
    )
    return Rect(
        s.x1 + x_band[0] * w, s.y1 + y_band[0] * h, s.x1 + x_band[1] * w, s.y1 + y_band[1] * h
    )


def _zone_points(region: Rect | Polygon) -> list[list[float]]:
    if isinstance(region, Polygon):
        return [[round(x, 2), round(y, 2)] for x, y in region.points]
    corners = [
        (region.x1, region.y1),
        (region.x2, region.y1),
        (region.x2, region.y2),
        (region.x1, region.y2),
    ]
    return [[round(x, 2), round(y, 2)] for x, y in corners]


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "px":
        return f"{value:.0f} px"
    return f"{value:.1f} {unit}"
