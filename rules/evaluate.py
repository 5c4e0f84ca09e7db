"""Judge one rule on one scene (SPEC 4.1) through its kind (``rules.kinds``).

Spatial rules are also constraints on where the mug's centre may stand (``positioning.regions``);
the same constraints give each failed rule its ``adjustment`` and every mug its optimal position
in ``rules.judge``.
"""

from __future__ import annotations

from positioning.regions import Constraint, SearchBudget
from positioning.scene import MugPlacement, Scene
from rules.kinds import Judging, kind_of, placement_kind
from rules.kinds.base import on_surface
from rules.model import Rule
from rules.outcome import AttributeScores, RuleResult


def evaluate(
    rule: Rule,
    scene: Scene,
    attribute_scores: AttributeScores | None,
    budget: SearchBudget | None = None,
) -> list[RuleResult]:
    """One result per mug (per-mug rules) or one for the image (``count``); the moves of failed
    rules draw on ``budget`` (the analysis' placement budget)."""
    judging = Judging(attribute_scores, budget or SearchBudget())
    return kind_of(rule).evaluate(rule, scene, judging)


def mug_constraints(rule: Rule, mug: MugPlacement, scene: Scene) -> list[Constraint] | None:
    """Where this mug's centre may stand for the rule to pass (none for rules that do not place
    the mug); None when it cannot be known."""
    kind = placement_kind(rule)
    return [] if kind is None else kind.constraints(rule, mug, scene)


def surface_constraint(mug: MugPlacement, scene: Scene) -> list[Constraint]:
    """The whole mug box stays on the surface."""
    return on_surface(scene.surface, mug.box.width / 2, mug.box.height / 2)
