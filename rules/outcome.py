"""What judging one rule gives (SPEC 4.1): a status, the measured and required values, a message,
the move that would fix it and what the annotated image should mark in red."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from positioning.geometry import Point
from positioning.scene import MugPlacement
from rules.model import Rule

Status = Literal["pass", "fail", "unknown"]
# A line the annotator draws in red: what makes a failed rule fail (a too-small gap, the edge).
Segment = tuple[Point, Point]
# A failed result's red lines, computed only when the image is drawn: with hundreds of mugs a
# spacing rule has tens of thousands of too-small gaps, and ``evaluate`` draws nothing.
Marks = Callable[[], tuple[Segment, ...]]


def no_marks() -> tuple[Segment, ...]:
    return ()


# CLIP's preference for an attribute rule's prompt, by (rule id, mug id).
AttributeScores = Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class Move:
    """A translation of the mug in pixels (x right, y down)."""

    dx: float
    dy: float

    @property
    def distance(self) -> float:
        return math.hypot(self.dx, self.dy)


@dataclass(frozen=True)
class Measured:
    value: float
    unit: str


@dataclass(frozen=True)
class Required:
    op: str
    value: float | Sequence[float] | Sequence[Sequence[float]]
    unit: str


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    mug_id: str | None
    status: Status
    measured: Measured | None
    required: Required
    message: str
    adjustment: Move | None = None
    marks: Marks = field(default=no_marks, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def move_to(mug: MugPlacement, target: Point | None) -> Move | None:
    """The move that takes the mug's centre to ``target`` (none when there is no target)."""
    if target is None:
        return None
    return Move(target[0] - mug.center[0], target[1] - mug.center[1])
