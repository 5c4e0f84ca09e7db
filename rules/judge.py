"""The verdict on one scene: rule results, each mug's optimal position, the score and feedback."""

from __future__ import annotations

from dataclasses import dataclass

from positioning.geometry import Point
from positioning.scene import MugPlacement, Scene


@dataclass(frozen=True)
class OptimalPlacement:
    """The nearest centre at which every spatial rule of the mug passes (``None`` if there is none)."""

    mug_id: str
    center: Point | None

    @property
    def feasible(self) -> bool:
        return self.center is not None


@dataclass(frozen=True)
class Judgement:
    compliant: bool
    safety_score: float
    optimal_positions: list[OptimalPlacement]
    summary: str
    recommendations: list[str]


def judge(scene: Scene) -> Judgement:
    """Judge a scene against no rules: every mug already stands where it may, nothing to score."""
    return Judgement(
        compliant=True,
        safety_score=1.0,
        optimal_positions=[OptimalPlacement(m.id, m.center) for m in scene.mugs],
        summary=_describe_mugs(scene.mugs) + "; no placement rules were checked.",
        recommendations=[],
    )


def _describe_mugs(mugs: list[MugPlacement]) -> str:
    if not mugs:
        return "No mugs found"
    where = ", ".join(f"{m.id} {_where(m.position_label)}" for m in mugs)
    noun = "mug" if len(mugs) == 1 else "mugs"
    return f"Found {len(mugs)} {noun} ({where})"


def _where(label: str) -> str:
    if label == "center":
        return "in the centre"
    if label.endswith("_edge"):
        return f"at the {label.removesuffix('_edge')} edge"
    return f"in the {label.replace('_', '-')} corner"
