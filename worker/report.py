"""A measured scene and its verdict as result fields (SPEC 3): plain, rounded JSON numbers.

Shared by ``analyze`` and ``evaluate``, so both say the same things the same way.
"""

from __future__ import annotations

import time
from typing import Any

from positioning.geometry import direction_phrase
from positioning.scene import Scene
from rules.judge import Judgement
from rules.outcome import Move, RuleResult
from worker.schemas import (
    AdjustmentNeeded,
    DetectionOut,
    Distance,
    FeedbackOut,
    Measured,
    MoveOut,
    MugOut,
    NeighbourOut,
    OptimalPosition,
    PositioningOut,
    Required,
    RuleResultOut,
    ScaleOut,
    SurfaceOut,
)


def ms_since(start: float) -> float:
    """Milliseconds since a ``time.perf_counter()`` reading."""
    return (time.perf_counter() - start) * 1000.0


def r(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def maybe(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else r(value, digits)


def scene_fields(scene: Scene) -> dict[str, Any]:
    """``detections``, ``scale``, ``surface`` and ``mugs`` of a result."""
    width, height = scene.width, scene.height
    to_mm = scene.scale.to_mm
    return {
        "detections": [
            DetectionOut(
                id=d.id,
                class_name=d.class_name,
                class_id=d.class_id,
                confidence=r(d.confidence, 4),
                box=[r(v) for v in d.box.as_list()],
                box_norm=[r(v, 4) for v in d.box.normalised(width, height)],
            )
            for d in scene.detections
        ],
        "scale": ScaleOut(
            mm_per_px=maybe(scene.scale.mm_per_px, 5),
            source=scene.scale.source,
            approximate=scene.scale.approximate,
        ),
        "surface": SurfaceOut(
            box=[r(v) for v in scene.surface.box.as_list()],
            polygon_norm=[[r(x, 4), r(y, 4)] for x, y in scene.surface.polygon_norm],
            source=scene.surface.source,
        ),
        "mugs": [
            MugOut(
                id=m.id,
                detection_id=m.detection.id,
                confidence=r(m.detection.confidence, 4),
                mug_score=maybe(m.mug_score, 4),
                center=[r(m.center[0]), r(m.center[1])],
                center_norm=[r(m.center[0] / width, 4), r(m.center[1] / height, 4)],
                position_label=m.position_label,
                edge_distance=Distance(
                    px=r(m.edge_distance_px), mm=maybe(to_mm(m.edge_distance_px))
                ),
                nearest=[
                    NeighbourOut(
                        detection_id=n.detection.id,
                        class_name=n.detection.class_name,
                        gap_px=r(n.gap_px),
                        gap_mm=maybe(to_mm(n.gap_px)),
                    )
                    for n in m.nearest
                ],
            )
            for m in scene.mugs
        ],
    }


def verdict_fields(scene: Scene, judgement: Judgement) -> dict[str, Any]:
    """``rules``, ``positioning`` and ``feedback`` of a result."""
    return {
        "rules": [_rule_result(result, scene) for result in judgement.results],
        "positioning": PositioningOut(
            compliant=judgement.compliant,
            safety_score=r(judgement.safety_score, 4),
            optimal_positions=[
                OptimalPosition(
                    mug_id=p.mug_id,
                    feasible=p.feasible,
                    center=None if p.center is None else [r(p.center[0]), r(p.center[1])],
                    move=None if p.move is None else move_out(p.move, scene),
                    searched=p.searched,
                )
                for p in judgement.optimal_positions
            ],
            adjustments_needed=[
                AdjustmentNeeded(
                    mug_id=a.mug_id,
                    direction=direction_phrase(a.move.dx, a.move.dy),
                    distance_px=r(a.move.distance),
                    distance_mm=maybe(scene.scale.to_mm(a.move.distance)),
                    reason=a.reason,
                )
                for a in judgement.adjustments
            ],
        ),
        "feedback": FeedbackOut(
            summary=judgement.summary, recommendations=judgement.recommendations
        ),
    }


def move_out(move: Move, scene: Scene) -> MoveOut:
    to_mm = scene.scale.to_mm
    return MoveOut(
        dx_px=r(move.dx),
        dy_px=r(move.dy),
        dx_mm=maybe(to_mm(move.dx)),
        dy_mm=maybe(to_mm(move.dy)),
        distance_px=r(move.distance),
        distance_mm=maybe(to_mm(move.distance)),
        direction=direction_phrase(move.dx, move.dy),
    )


def _rule_result(result: RuleResult, scene: Scene) -> RuleResultOut:
    rule = result.rule
    return RuleResultOut(
        rule_id=rule.rule_id,
        type=rule.type,
        text=rule.text,
        severity=rule.severity,
        mug_id=result.mug_id,
        status=result.status,
        measured=None
        if result.measured is None
        else Measured(value=result.measured.value, unit=result.measured.unit),
        required=Required(
            op=result.required.op, value=result.required.value, unit=result.required.unit
        ),
        message=result.message,
        adjustment=None if result.adjustment is None else move_out(result.adjustment, scene),
    )
