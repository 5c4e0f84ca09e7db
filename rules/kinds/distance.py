"""``min_distance`` and ``max_distance``: the mug's gap to the objects of one class."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, cast

from positioning.geometry import Box, gap
from positioning.regions import Constraint, RoundedRect
from positioning.scene import MugPlacement, Scene
from rules.kinds.base import (
    Absent,
    DistanceKind,
    KeepAway,
    format_length,
    grown,
    required_pixels,
)
from rules.model import MaxDistanceRule, MinDistanceRule, ObjectRule
from rules.outcome import RuleResult


def objects_near(rule: ObjectRule, mug: MugPlacement, scene: Scene) -> list[Box]:
    """The boxes of the rule's object class, the mug's own detection left out."""
    return [d.box for d in scene.objects_of(rule.object) if d.id != mug.detection.id]


class _ObjectDistance(DistanceKind):
    def measure(
        self, rule: ObjectRule, mug: MugPlacement, scene: Scene
    ) -> tuple[float, str] | Absent:
        objects = objects_near(rule, mug, scene)
        if not objects:
            return self.absent(rule, mug)
        return min(gap(mug.box, box) for box in objects), f"from the {rule.object}"

    @abstractmethod
    def absent(self, rule: Any, mug: MugPlacement) -> Absent:
        """The verdict when no object of the class is in view."""


class MinDistance(_ObjectDistance, KeepAway):
    """At least the distance from every object of the class."""

    def absent(self, rule: MinDistanceRule, mug: MugPlacement) -> Absent:
        return Absent("pass", f"{mug.id}: no {rule.object} in view, so nothing to keep away from.")

    def away_from(self, rule: MinDistanceRule, mug: MugPlacement, scene: Scene) -> list[Box]:
        return objects_near(rule, mug, scene)

    def problem(self, result: RuleResult) -> str:
        return f"too close to the {cast(MinDistanceRule, result.rule).object}"

    def move_reason(self, rule: MinDistanceRule) -> str:
        return f"away from the {rule.object}"


class MaxDistance(_ObjectDistance):
    """Within the distance of the nearest object of the class."""

    op = "<="

    def absent(self, rule: MaxDistanceRule, mug: MugPlacement) -> Absent:
        return Absent(
            "fail",
            f"{mug.id}: no {rule.object} in view, so it cannot be within {rule.distance} of one.",
        )

    def fail_message(
        self, rule: MaxDistanceRule, mug: MugPlacement, measured_px: float, shown: float, what: str
    ) -> str:
        value = format_length(shown, rule.distance.unit)
        return f"{mug.id} is {value} {what}; keep it within {rule.distance}."

    def constraints(
        self, rule: MaxDistanceRule, mug: MugPlacement, scene: Scene
    ) -> list[Constraint] | None:
        required = required_pixels(rule.distance, scene)
        if required is None:
            return None
        half_w, half_h = mug.box.width / 2, mug.box.height / 2
        reach = tuple(
            RoundedRect(grown(box, half_w, half_h), required)
            for box in objects_near(rule, mug, scene)
        )
        return [Constraint(reach, inside=True)]

    def problem(self, result: RuleResult) -> str:
        return f"too far from the {cast(MaxDistanceRule, result.rule).object}"

    def move_reason(self, rule: MaxDistanceRule) -> str:
        return f"closer to the {rule.object}"
