"""What a rule kind is: the one small Protocol every kind module implements, and the parts
kinds share.

A kind judges its rules on a scene (``evaluate``), says what is wrong in a person's words
(``problem``) and what to do beyond moving the mug (``advice``). A kind that decides where the
mug may stand is a ``Placement``: it also gives those constraints (for the move that fixes one
failed rule and for each mug's optimal position) and the reason a move serves it. A kind that asks
CLIP is ``ClipPrompted``: it names the two prompts CLIP compares on each mug's crop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Protocol, runtime_checkable

from positioning.geometry import Box, closest_points, gap, outline_edges
from positioning.regions import (
    Constraint,
    HalfPlane,
    Inset,
    Polygon,
    Rect,
    RoundedRect,
    SearchBudget,
    SearchBudgetExhausted,
    nearest_feasible,
)
from positioning.scene import MugPlacement, Scene, Surface
from rules.model import Distance
from rules.outcome import (
    AttributeScores,
    Measured,
    Move,
    Required,
    RuleResult,
    Segment,
    Status,
    move_to,
)

# A tiny tolerance so a distance equal to the limit (up to float rounding) counts as equal.
TOLERANCE = 1e-6
NO_SCALE_HINT = "give calibration.mm_per_px or a reference object to measure in mm"


@dataclass(frozen=True)
class Judging:
    """What a kind may draw on while it judges one analysis: CLIP's attribute scores (None when
    CLIP did not run) and the analysis' placement budget, which every move search spends."""

    attribute_scores: AttributeScores | None
    budget: SearchBudget


@runtime_checkable
class RuleKind(Protocol):
    """How one rule type is judged and explained. ``rule`` is that kind's own rule model."""

    def evaluate(self, rule: Any, scene: Scene, judging: Judging) -> list[RuleResult]:
        """One result per mug, or one for the whole image."""
        ...

    def problem(self, result: RuleResult) -> str:
        """What is wrong with a failed result, as a person would say it ("too close to the laptop")."""
        ...

    def advice(self, result: RuleResult) -> str | None:
        """A recommendation for a failed result beyond the move (None: the move says it all)."""
        ...


class ClipPrompted(ABC):
    """A kind judged by CLIP on each mug's crop."""

    @abstractmethod
    def clip_prompts(self, rule: Any) -> tuple[str, str]:
        """The prompt the mug should match and the one it is compared with."""


# ------------------------------------------------------------------ shared parts of the kinds


class PerMug(ABC):
    """A kind judged once for every mug of the scene."""

    def evaluate(self, rule: Any, scene: Scene, judging: Judging) -> list[RuleResult]:
        return [self.judge_mug(rule, mug, scene, judging) for mug in scene.mugs]

    @abstractmethod
    def judge_mug(
        self, rule: Any, mug: MugPlacement, scene: Scene, judging: Judging
    ) -> RuleResult: ...


class Placement(PerMug):
    """A per-mug kind whose rules decide where the mug may stand: a failed rule gets the move
    that fixes it, and the constraints join every mug's optimal-position search."""

    @abstractmethod
    def constraints(self, rule: Any, mug: MugPlacement, scene: Scene) -> list[Constraint] | None:
        """Where this mug's centre may stand for the rule to pass; None when it cannot be known."""

    @abstractmethod
    def move_reason(self, rule: Any) -> str:
        """Why a move serves the rule ("away from the laptop")."""

    @abstractmethod
    def problem(self, result: RuleResult) -> str: ...

    def advice(self, result: RuleResult) -> str | None:
        return None  # the move is the advice

    def adjustment(
        self, rule: Any, mug: MugPlacement, scene: Scene, budget: SearchBudget
    ) -> Move | None:
        """The move that makes this rule alone pass; none once the placement budget is spent."""
        try:
            budget.spend(len(scene.detections))  # building the constraints: one region an object
            target = nearest_feasible(
                mug.center, self.constraints(rule, mug, scene) or [], budget=budget
            )
        except SearchBudgetExhausted:
            return None
        return move_to(mug, target)


@dataclass(frozen=True)
class Absent:
    """Nothing to measure (no such object in view, no other mug): the verdict that follows."""

    status: Status
    message: str


class DistanceKind(Placement):
    """A rule on one measured distance from the mug: to objects, to the table edge, to other mugs.

    A kind says how to measure (``measure``), how to word a failure (``fail_message``) and what to
    mark (``marks``); judging against the rule's distance, scale and tolerance is shared.
    """

    op: ClassVar[str] = (
        ">="  # the measured distance must be at least (>=) or at most (<=) the rule's
    )

    @abstractmethod
    def measure(self, rule: Any, mug: MugPlacement, scene: Scene) -> tuple[float, str] | Absent:
        """The distance in pixels and what it is from ("from the laptop")."""

    def fail_message(
        self, rule: Any, mug: MugPlacement, measured_px: float, shown: float, what: str
    ) -> str:
        """The failed rule's message: the measured distance ``shown`` in the rule's unit, ``what``
        it is from (a minimum distance unless the kind says otherwise)."""
        value = format_length(shown, rule.distance.unit)
        return f"{mug.id} is {value} {what}; keep it at least {rule.distance} away."

    def marks(
        self, rule: Any, mug: MugPlacement, scene: Scene, required_px: float
    ) -> tuple[Segment, ...]:
        return ()

    def judge_mug(self, rule: Any, mug: MugPlacement, scene: Scene, judging: Judging) -> RuleResult:
        distance: Distance = rule.distance
        required = Required(op=self.op, value=distance.value, unit=distance.unit)
        found = self.measure(rule, mug, scene)
        if isinstance(found, Absent):
            return RuleResult(rule, mug.id, found.status, None, required, found.message)
        measured_px, what = found
        required_px = required_pixels(distance, scene)
        if required_px is None:
            message = (
                f"{mug.id} is {measured_px:.0f} px {what}, but {distance} cannot be checked "
                f"without a scale ({NO_SCALE_HINT})."
            )
            return RuleResult(
                rule, mug.id, "unknown", Measured(round(measured_px, 2), "px"), required, message
            )
        passed = (
            measured_px <= required_px + TOLERANCE
            if self.op == "<="
            else measured_px >= required_px - TOLERANCE
        )
        shown = distance.in_unit(measured_px, scene.scale.mm_per_px, scene.width)
        assert shown is not None
        measured = Measured(round(shown, 2), distance.unit)
        if passed:
            bound = "at most" if self.op == "<=" else "at least"
            message = (
                f"{mug.id} is {format_length(shown, distance.unit)} {what} "
                f"({bound} {distance} required)."
            )
            return RuleResult(rule, mug.id, "pass", measured, required, message)
        return RuleResult(
            rule,
            mug.id,
            "fail",
            measured,
            required,
            self.fail_message(rule, mug, measured_px, shown, what),
            self.adjustment(rule, mug, scene, judging.budget),
            partial(self.marks, rule, mug, scene, required_px),
        )


class KeepAway(DistanceKind):
    """A minimum distance from some boxes (objects of a class, the other mugs): what it marks
    and where the mug may stand follow from which boxes."""

    @abstractmethod
    def away_from(self, rule: Any, mug: MugPlacement, scene: Scene) -> list[Box]:
        """The boxes the mug keeps its distance from."""

    def marks(
        self, rule: Any, mug: MugPlacement, scene: Scene, required_px: float
    ) -> tuple[Segment, ...]:
        """A red line to every box nearer than the rule allows, not only to the nearest."""
        return tuple(
            closest_points(mug.box, box)
            for box in self.away_from(rule, mug, scene)
            if gap(mug.box, box) < required_px
        )

    def constraints(self, rule: Any, mug: MugPlacement, scene: Scene) -> list[Constraint] | None:
        required = required_pixels(rule.distance, scene)
        if required is None:
            return None
        if required == 0:
            return []
        boxes = self.away_from(rule, mug, scene)
        return [keep_away(boxes, mug.box.width / 2, mug.box.height / 2, required)]


def required_pixels(distance: Distance, scene: Scene) -> float | None:
    """The rule's distance in pixels on this scene; None for a physical unit without a scale."""
    return distance.to_px(scene.scale.mm_per_px, scene.width)


def grown(box: Box, half_w: float, half_h: float) -> Rect:
    """The box grown by half the mug's size: where the mug's centre would make them touch."""
    return Rect(box.x1 - half_w, box.y1 - half_h, box.x2 + half_w, box.y2 + half_h)


def keep_away(boxes: list[Box], half_w: float, half_h: float, distance: float) -> Constraint:
    """The mug's centre stays ``distance`` clear of every box."""
    regions = tuple(RoundedRect(grown(box, half_w, half_h), distance) for box in boxes)
    return Constraint(regions, inside=False)


def on_surface(
    surface: Surface, half_w: float, half_h: float, margin: float = 0.0
) -> list[Constraint]:
    """Where a mug's centre may stand for the whole mug (``half_w`` x ``half_h`` either way) to be
    on the surface, ``margin`` in from its visible edges; where the picture ends, only in view.

    A box surface is the exact box; a convex outline one half-plane a side (each side's own
    inset, exact); an outline that bends inwards keeps the mug's larger half and the margin from
    every side (a little stricter than the rule where a side is cut).
    """
    visible = {edge.name for edge in surface.edges}
    every = outline_edges(surface.corners, surface.side_names)
    if surface.is_box:
        s = surface.box
        inset = {_box_side(edge.normal): margin if edge.name in visible else 0.0 for edge in every}
        allowed = Rect(
            s.x1 + half_w + inset.get("left", 0.0),
            s.y1 + half_h + inset.get("top", 0.0),
            s.x2 - half_w - inset.get("right", 0.0),
            s.y2 - half_h - inset.get("bottom", 0.0),
        )
        return [Constraint((allowed,), inside=True)]
    box = surface.box
    reach = 2 * (box.width + box.height) + half_w + half_h + margin
    if surface.convex:
        return [
            Constraint(
                (
                    HalfPlane(
                        edge.a,
                        edge.normal,
                        half_w * abs(edge.normal[0])
                        + half_h * abs(edge.normal[1])
                        + (margin if edge.name in visible else 0.0),
                        reach,
                    ),
                ),
                inside=True,
            )
            for edge in every
        ]
    keep = max(half_w, half_h) + (margin if visible else 0.0)
    return [Constraint((Inset(Polygon(surface.corners), keep),), inside=True)]


def _box_side(normal: tuple[float, float]) -> str:
    """Which side of a box surface an edge is, by the way its inward normal points."""
    nx, ny = normal
    if abs(nx) > abs(ny):
        return "left" if nx > 0 else "right"
    return "top" if ny > 0 else "bottom"


def format_length(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "px":
        return f"{value:.0f} px"
    return f"{value:.1f} {unit}"
