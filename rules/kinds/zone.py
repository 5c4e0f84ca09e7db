"""``zone``: the mug's centre inside (or outside) a region of the surface."""

from __future__ import annotations

from typing import cast

from positioning.regions import Constraint, Polygon, Rect
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import TOLERANCE, Judging, Placement
from rules.model import ZoneRule
from rules.outcome import Measured, Required, RuleResult

# The named zones as fractions of the surface box: (x from, x to), (y from, y to).
_X_BANDS = {
    "left_half": (0.0, 1 / 2),
    "right_half": (1 / 2, 1.0),
    "left_third": (0.0, 1 / 3),
    "center_third": (1 / 3, 2 / 3),
    "right_third": (2 / 3, 1.0),
    "center": (1 / 3, 2 / 3),
}
_Y_BANDS = {"top_half": (0.0, 1 / 2), "bottom_half": (1 / 2, 1.0), "center": (1 / 3, 2 / 3)}


def zone_region(rule: ZoneRule, scene: Scene) -> Rect | Polygon:
    """The zone in image pixels: a named band of the surface box, or a polygon scaled onto it."""
    s = scene.surface.box
    if isinstance(rule.zone, list):
        return Polygon(tuple((s.x1 + x * s.width, s.y1 + y * s.height) for x, y in rule.zone))
    x_band = _X_BANDS.get(rule.zone, (0.0, 1.0))
    y_band = _Y_BANDS.get(rule.zone, (0.0, 1.0))
    w, h = s.width, s.height
    return Rect(
        s.x1 + x_band[0] * w, s.y1 + y_band[0] * h, s.x1 + x_band[1] * w, s.y1 + y_band[1] * h
    )


def zone_name(rule: ZoneRule) -> str:
    return f"the {rule.zone.replace('_', ' ')}" if isinstance(rule.zone, str) else "the zone"


def _corners(region: Rect | Polygon) -> list[list[float]]:
    if isinstance(region, Polygon):
        return [[round(x, 2), round(y, 2)] for x, y in region.points]
    corners = [
        (region.x1, region.y1),
        (region.x2, region.y1),
        (region.x2, region.y2),
        (region.x1, region.y2),
    ]
    return [[round(x, 2), round(y, 2)] for x, y in corners]


class Zone(Placement):
    def judge_mug(
        self, rule: ZoneRule, mug: MugPlacement, scene: Scene, judging: Judging
    ) -> RuleResult:
        region = zone_region(rule, scene)
        depth = -region.signed_distance(mug.center)  # > 0 inside, < 0 outside
        inside = depth >= -TOLERANCE
        passed = inside if rule.mode == "inside" else not inside
        zone_text = zone_name(rule)
        required = Required(op=rule.mode, value=_corners(region), unit="px")
        measured = Measured(round(depth, 2), "px")
        where = "inside" if inside else "outside"
        if passed:
            message = f"{mug.id}'s centre is {where} {zone_text} (required {rule.mode})."
            return RuleResult(rule, mug.id, "pass", measured, required, message)
        verb = "into" if rule.mode == "inside" else "out of"
        message = f"{mug.id}'s centre is {where} {zone_text}; move it {verb} {zone_text}."
        adjustment = self.adjustment(rule, mug, scene, judging.budget)
        return RuleResult(rule, mug.id, "fail", measured, required, message, adjustment)

    def constraints(self, rule: ZoneRule, mug: MugPlacement, scene: Scene) -> list[Constraint]:
        return [Constraint((zone_region(rule, scene),), inside=rule.mode == "inside")]

    def problem(self, result: RuleResult) -> str:
        rule = cast(ZoneRule, result.rule)
        return f"{'outside' if rule.mode == 'inside' else 'in'} {zone_name(rule)}"

    def move_reason(self, rule: ZoneRule) -> str:
        return f"{'into' if rule.mode == 'inside' else 'out of'} {zone_name(rule)}"
