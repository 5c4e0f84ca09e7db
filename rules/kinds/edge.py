"""``edge_margin``: the mug keeps a distance from the edge of the surface."""

from __future__ import annotations

from positioning.geometry import edge_distance, nearest_edge
from positioning.regions import Constraint, Rect
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import Absent, DistanceKind, format_length, required_pixels
from rules.model import EdgeMarginRule
from rules.outcome import RuleResult, Segment


class EdgeMargin(DistanceKind):
    """At least the distance from the nearest side of the surface (negative: over the edge)."""

    def measure(
        self, rule: EdgeMarginRule, mug: MugPlacement, scene: Scene
    ) -> tuple[float, str] | Absent:
        return edge_distance(mug.box, scene.surface.box), "from the table edge"

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
        _, on_mug, on_edge = nearest_edge(mug.box, scene.surface.box)
        return ((on_mug, on_edge),)

    def constraints(
        self, rule: EdgeMarginRule, mug: MugPlacement, scene: Scene
    ) -> list[Constraint] | None:
        required = required_pixels(rule.distance, scene)
        if required is None:
            return None
        s = scene.surface.box
        half_w, half_h = mug.box.width / 2, mug.box.height / 2
        allowed = Rect(s.x1, s.y1, s.x2, s.y2).grow(-(half_w + required), -(half_h + required))
        return [Constraint((allowed,), inside=True)]

    def problem(self, result: RuleResult) -> str:
        return "too close to the table edge"

    def move_reason(self, rule: EdgeMarginRule) -> str:
        return "away from the table edge"
