"""``spacing``: every two mugs keep a distance between them."""

from __future__ import annotations

from positioning.geometry import Box
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import Absent, KeepAway
from rules.model import SpacingRule
from rules.outcome import RuleResult


def other_mugs(mug: MugPlacement, scene: Scene) -> list[Box]:
    return [other.box for other in scene.mugs if other.id != mug.id]


class Spacing(KeepAway):
    """At least the distance from the nearest other mug."""

    def measure(
        self, rule: SpacingRule, mug: MugPlacement, scene: Scene
    ) -> tuple[float, str] | Absent:
        if mug.id not in scene.nearest_mug:
            return Absent("pass", f"{mug.id} is the only mug, so it is spaced from every other.")
        nearest, distance = scene.nearest_mug[mug.id]
        return distance, f"from {nearest.id}"

    def away_from(self, rule: SpacingRule, mug: MugPlacement, scene: Scene) -> list[Box]:
        return other_mugs(mug, scene)

    def problem(self, result: RuleResult) -> str:
        return "too close to another mug"

    def move_reason(self, rule: SpacingRule) -> str:
        return "away from the other mugs"
