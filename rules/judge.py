"""The verdict on one scene (SPEC 4.2): rule results, each mug's optimal position, the safety score
and feedback a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from positioning.geometry import Point, direction_phrase
from positioning.regions import (
    PLACEMENT_CHECKS,
    Constraint,
    SearchBudget,
    SearchBudgetExhausted,
    nearest_feasible,
)
from positioning.scene import MugPlacement, Scene
from rules.evaluate import evaluate, mug_constraints, surface_constraint
from rules.kinds import kind_of, placement_kind
from rules.model import Rule
from rules.outcome import AttributeScores, Move, RuleResult, move_to

SEVERITY_WEIGHTS = {"critical": 3, "warning": 2, "info": 1}


@dataclass(frozen=True)
class OptimalPlacement:
    """The nearest centre at which every spatial rule of the mug passes (``None``: there is none,
    or ``searched`` is false: the analysis' placement budget ran out before this mug)."""

    mug_id: str
    center: Point | None
    move: Move | None
    searched: bool = True
    # when there is no such centre, why (SPEC 10): the rules that cannot hold together (one rule:
    # the mug does not fit the area that rule allows on the table); empty when it was not found
    conflict: tuple[Rule, ...] = ()

    @property
    def feasible(self) -> bool:
        return self.center is not None


@dataclass(frozen=True)
class AdjustmentNeeded:
    mug_id: str
    move: Move
    reason: str


@dataclass(frozen=True)
class Judgement:
    results: list[RuleResult]
    optimal_positions: list[OptimalPlacement]
    adjustments: list[AdjustmentNeeded]
    compliant: bool
    safety_score: float
    summary: str
    recommendations: list[str]


def judge(
    scene: Scene, rules: Sequence[Rule], attribute_scores: AttributeScores | None = None
) -> Judgement:
    """Evaluate every enabled rule, then find where each mug should stand and say so."""
    active = [rule for rule in rules if rule.enabled]
    budget = SearchBudget()  # one for the whole analysis: each rule's moves, then the positions
    results = [
        result for rule in active for result in evaluate(rule, scene, attribute_scores, budget)
    ]
    optimal = [_optimal_position(mug, active, scene, budget) for mug in scene.mugs]
    adjustments = _adjustments(scene, results, optimal)
    return Judgement(
        results=results,
        optimal_positions=optimal,
        adjustments=adjustments,
        compliant=not any(result.failed for result in results),
        safety_score=safety_score(results),
        summary=_summary(scene, active, results),
        recommendations=_recommendations(scene, results, optimal, adjustments),
    )


def safety_score(results: Sequence[RuleResult]) -> float:
    """1 - failed weight / judged weight (critical 3, warning 2, info 1); 1.0 with nothing judged."""
    judged = [r for r in results if r.status in ("pass", "fail")]
    total = sum(SEVERITY_WEIGHTS[r.rule.severity] for r in judged)
    if total == 0:
        return 1.0
    failed = sum(SEVERITY_WEIGHTS[r.rule.severity] for r in judged if r.failed)
    return 1.0 - failed / total


def _optimal_position(
    mug: MugPlacement, rules: Sequence[Rule], scene: Scene, budget: SearchBudget
) -> OptimalPlacement:
    """All of the mug's spatial rules at once, the other objects held still, the mug on the surface.

    A rule that cannot be measured (physical units, no scale) cannot constrain the position.
    """
    try:
        budget.spend(len(rules) * len(scene.detections))  # building the constraints
        on_surface = surface_constraint(mug, scene)
        placing = [(rule, mug_constraints(rule, mug, scene) or []) for rule in rules]
        placing = [(rule, found) for rule, found in placing if found]
        constraints = [*on_surface, *(c for _, found in placing for c in found)]
        center = nearest_feasible(mug.center, constraints, budget=budget)
        if center is None:
            return OptimalPlacement(
                mug.id, None, None, conflict=_conflict(mug, on_surface, placing, budget)
            )
    except SearchBudgetExhausted:
        return OptimalPlacement(mug.id, None, None, searched=False)
    return OptimalPlacement(mug.id, center, move_to(mug, center))


def _conflict(
    mug: MugPlacement,
    on_surface: list[Constraint],
    placing: Sequence[tuple[Rule, list[Constraint]]],
    budget: SearchBudget,
) -> tuple[Rule, ...]:
    """The fewest of the mug's rules that no spot on the table satisfies together: one rule alone
    (the mug does not fit the area it allows), else a pair; empty when every pair has a spot, or
    when the analysis' placement budget runs out first (the mug still has no spot)."""
    try:
        for size in (1, 2):
            for group in combinations(placing, size):
                constraints = [*on_surface, *(c for _, found in group for c in found)]
                if nearest_feasible(mug.center, constraints, budget=budget) is None:
                    return tuple(rule for rule, _ in group)
    except SearchBudgetExhausted:
        pass
    return ()


def _adjustments(
    scene: Scene, results: Sequence[RuleResult], optimal: Sequence[OptimalPlacement]
) -> list[AdjustmentNeeded]:
    """One move per mug that fails a spatial rule: to its optimal position, or, when no position
    satisfies every rule, the move that fixes each failed rule on its own."""
    needed = []
    for mug, placement in zip(scene.mugs, optimal, strict=True):
        failed = [
            (result, kind)
            for result in results
            if result.mug_id == mug.id
            and result.failed
            and (kind := placement_kind(result.rule)) is not None
        ]
        if not failed:
            continue
        if placement.move is not None:
            reason = " and ".join(
                dict.fromkeys(kind.move_reason(result.rule) for result, kind in failed)
            )
            needed.append(AdjustmentNeeded(mug.id, placement.move, reason))
            continue
        for result, kind in failed:
            if result.adjustment is not None:
                reason = f"{kind.move_reason(result.rule)} (no position satisfies every rule)"
                needed.append(AdjustmentNeeded(mug.id, result.adjustment, reason))
    return needed


def _problem(result: RuleResult) -> str:
    """What is wrong, as a person would say it."""
    return kind_of(result.rule).problem(result)


def _summary(scene: Scene, rules: Sequence[Rule], results: Sequence[RuleResult]) -> str:
    mugs = scene.mugs
    unknown = sum(1 for r in results if r.status == "unknown")
    caveat = f" ({unknown} could not be checked)" if unknown else ""
    count_failures = [_problem(r) for r in results if r.mug_id is None and r.failed]
    if not rules:
        return f"{_describe_mugs(mugs)}; no placement rules were checked."
    if not results:
        return f"No mugs found, so none of the {len(rules)} rules applied."
    if not mugs:
        if count_failures:
            return f"No mugs found: {count_failures[0]}."
        return f"No mugs found; nothing else to judge{caveat}."
    problems: dict[str, list[str]] = {}
    for result in results:
        if result.failed and result.mug_id is not None:
            problems.setdefault(result.mug_id, []).append(_problem(result))
    if not problems and not count_failures:
        if len(mugs) == 1:
            return f"The mug is placed safely{caveat}."
        return f"All {len(mugs)} mugs are placed safely{caveat}."
    parts = [
        f"{mug_id} is {' and '.join(dict.fromkeys(issues))}" for mug_id, issues in problems.items()
    ]
    if problems:
        verb = "needs" if len(problems) == 1 else "need"
        head = (
            "The mug needs moving"
            if len(mugs) == 1
            else f"{len(problems)} of {len(mugs)} mugs {verb} moving"
        )
        sentence = f"{head}: {'; '.join(parts)}"
        if count_failures:
            sentence += f"; {count_failures[0]}"
        return sentence + "."
    return f"{count_failures[0]}{caveat}."


def _describe_mugs(mugs: Sequence[MugPlacement]) -> str:
    if not mugs:
        return "No mugs found"
    where = ", ".join(f"{m.id} {_where(m.position_label)}" for m in mugs)
    return f"Found {len(mugs)} mug{'s' if len(mugs) != 1 else ''} ({where})"


def _where(label: str) -> str:
    if label == "center":
        return "in the centre"
    if label.endswith("_edge"):
        return f"at the {label.removesuffix('_edge')} edge"
    return f"in the {label.replace('_', '-')} corner"


def _recommendations(
    scene: Scene,
    results: Sequence[RuleResult],
    optimal: Sequence[OptimalPlacement],
    adjustments: Sequence[AdjustmentNeeded],
) -> list[str]:
    tips = [f"Move mug {a.mug_id} {_how_far(a.move, scene)}, {a.reason}." for a in adjustments]
    for placement in optimal:
        failed_spatial = any(
            r.mug_id == placement.mug_id and r.failed and placement_kind(r.rule) is not None
            for r in results
        )
        if failed_spatial and not placement.searched:
            tips.append(
                f"No move computed for mug {placement.mug_id}: the placement search stopped at "
                f"its limit of {PLACEMENT_CHECKS:,} checks for this image (many mugs and rules)."
            )
        elif failed_spatial and not placement.feasible:
            tips.append(_infeasible(placement))
    for result in results:
        advice = kind_of(result.rule).advice(result) if result.failed else None
        if advice is not None:
            tips.append(advice)
    unknown = [r for r in results if r.status == "unknown"]
    if any(r.measured is not None for r in unknown):
        tips.append(
            "Give a scale (calibration.mm_per_px, or a reference object such as a laptop in "
            "view) so that rules in physical units can be checked."
        )
    return list(dict.fromkeys(tips))


def _infeasible(placement: OptimalPlacement) -> str:
    """Why no spot satisfies the mug's rules, naming them (SPEC 10)."""
    mug_id, conflict = placement.mug_id, placement.conflict
    if len(conflict) == 1:
        (rule,) = conflict
        return (
            f"Mug {mug_id} does not fit anywhere on the table that {_named(rule)} allows: "
            "the allowed area is smaller than the mug; relax that rule."
        )
    if len(conflict) == 2:
        first, second = conflict
        return (
            f"No spot on the table satisfies both {_named(first)} and {_named(second)} for mug "
            f"{mug_id}; relax one of them or clear space."
        )
    return (
        f"No spot on the table satisfies every rule for mug {mug_id} at once (no single rule or "
        "pair of them rules every spot out); relax one or clear space."
    )


def _named(rule: Rule) -> str:
    """A rule as a person wrote it (its sentence), else as the worker reads it."""
    if rule.text:
        return f'"{rule.text}"'
    distance = getattr(rule, "distance", None)
    how_far = "" if distance is None else f", {distance}"
    kind = placement_kind(rule)
    reason = kind.move_reason(rule) if kind is not None else rule.type
    return f"the rule ({reason}{how_far})"


def _length(px: float, scene: Scene) -> str:
    mm = scene.scale.to_mm(px)
    if mm is None:
        return f"{px:.0f} px"
    return f"{mm:.0f} mm"


def _how_far(move: Move, scene: Scene) -> str:
    """``"72 mm to the right"``, or both legs for a diagonal move (the same call as ``direction``)."""
    horizontal = f"{_length(abs(move.dx), scene)} to the {'right' if move.dx > 0 else 'left'}"
    vertical = f"{_length(abs(move.dy), scene)} {'down' if move.dy > 0 else 'up'}"
    phrase = direction_phrase(move.dx, move.dy)
    if " and " in phrase:
        return f"{horizontal} and {vertical}"
    if phrase in ("left", "right"):
        return f"{_length(move.distance, scene)} to the {phrase}"
    return f"{_length(move.distance, scene)} {phrase}"
