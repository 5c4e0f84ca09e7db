"""``edge_margin``: the mug keeps a distance from the edge of the surface."""

from __future__ import annotations

from positioning.geometry import edge_distance, nearest_edge
from positioning.regions import Constraint
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import Absent, DistanceKind, format_length, on_surface, required_pixels
from rules.model import EdgeMarginRule
from rules.outcome import RuleResult, Segment


class EdgeMargin(DistanceKind):
    """At least the distance from the nearest side of the surface (negative: over the edge)."""

    def measure(
        self, rule: EdgeMarginRule, mug: MugPlacement, scene: Scene
    ) -> tuple[float, str] | Absent:
        distance = edge_distance(mug.box, scene.surface.edges)
        if distance is None:
            return Absent(
                "unknown",
                f"{mug.id}: the table runs out of the picture on every side, so no table edge "
                "is in view to measure from.",
            )
        return distance, "from the table edge"

    def fail_message(
        self, rule: EdgeMarginRule, mug: MugPlacement, measured_px: float, shown: float, what: str
    ) -> str:
        unit = rule.distance.unit
        if measured_px < 0:
            over = format_length(-shown, unit)
            return f"{mug.id} sticks {over} over the table edge; keep it {rule.distance} in."
        value = format_length(shown, unit)
        return f"{mug.id} is {value} {what}; keep it at least {rule.distance} in."

    def marks(
        self, rule: EdgeMarginRule, mug: MugPlacement, scene: Scene, required_px: float
    ) -> tuple[Segment, ...]:
        nearest = nearest_edge(mug.box, scene.surface.edges)
        if nearest is None:
            return ()
        _, on_mug, on_edge = nearest
        return ((on_mug, on_edge),)

    def constraints(
        self, rule: EdgeMarginRule, mug: MugPlacement, scene: Scene
    ) -> list[Constraint] | None:
        required = required_pixels(rule.distance, scene)
        if required is None or not scene.surface.edges:
            return None
        return on_surface(scene.surface, mug.box.width / 2, mug.box.height / 2, required)

    def problem(self, result: RuleResult) -> str:
        return "too close to the table edge"

    def move_reason(self, rule: EdgeMarginRule) -> str:
        return "away from the table edge"
