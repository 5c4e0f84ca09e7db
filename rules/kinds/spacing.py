"""``spacing``: every two mugs keep a distance between them."""

from __future__ import annotations

from positioning.geometry import Box, closest_points, gap
from positioning.regions import Constraint
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import Absent, DistanceKind, format_length, keep_away, required_pixels
from rules.model import SpacingRule
from rules.outcome import RuleResult, Segment


def other_mugs(mug: MugPlacement, scene: Scene) -> list[Box]:
    return [other.box for other in scene.mugs if other.id != mug.id]


class Spacing(DistanceKind):
    """At least the distance from the nearest other mug."""

    def measure(
        self, rule: SpacingRule, mug: MugPlacement, scene: Scene
    ) -> tuple[float, str] | Absent:
        if mug.id not in scene.nearest_mug:
            return Absent("pass", f"{mug.id} is the only mug, so it is spaced from every other.")
        nearest, distance = scene.nearest_mug[mug.id]
        return distance, f"from {nearest.id}"

    def fail_message(
        self, rule: SpacingRule, mug: MugPlacement, measured_px: float, shown: float, what: str
    ) -> str:
        value = format_length(shown, rule.distance.unit)
        return f"{mug.id} is {value} {what}; keep it at least {rule.distance} away."

    def marks(
        self, rule: SpacingRule, mug: MugPlacement, scene: Scene, required_px: float
    ) -> tuple[Segment, ...]:
        """A red line to every mug that is too close."""
        return tuple(
            closest_points(mug.box, box)
            for box in other_mugs(mug, scene)
            if gap(mug.box, box) < required_px
        )

    def constraints(
        self, rule: SpacingRule, mug: MugPlacement, scene: Scene
    ) -> list[Constraint] | None:
        required = required_pixels(rule.distance, scene)
        if required is None:
            return None
        if required == 0:
            return []
        return [keep_away(other_mugs(mug, scene), mug.box.width / 2, mug.box.height / 2, required)]

    def problem(self, result: RuleResult) -> str:
        return "too close to another mug"

    def move_reason(self, rule: SpacingRule) -> str:
        return "away from the other mugs"
