"""Result assembly (SPEC 3): every analysis and evaluate result is built here, once, from
typed parts (the other actions' answers are small enough to stay with the action).

A measured scene and its verdict become plain, rounded JSON numbers the same way for ``analyze``
and ``evaluate``; the models say what they are; a job's result is put together from the image's
analysis and what the job did with it (persistence, timings, metadata).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.layout import ModelInfo
from positioning.geometry import Box, direction_phrase
from positioning.scene import Scene
from rules.judge import Judgement
from rules.outcome import Move, RuleResult
from worker.errors import JobError
from worker.runtime import ModelSet
from worker.schemas import (
    AdjustmentNeeded,
    AnalysisRecord,
    AnalysisResult,
    ArtifactsOut,
    BatchItemError,
    BatchSummary,
    ClipOut,
    DetectionOut,
    DetectorOut,
    Distance,
    EvaluateResult,
    EvaluateTimings,
    FeedbackOut,
    ImageAnalysis,
    ImageInfo,
    Measured,
    ModelsOut,
    MoveOut,
    MugOut,
    NeighbourOut,
    OptimalPosition,
    PersistedOut,
    PositioningOut,
    RejectedMugOut,
    Required,
    RuleResultOut,
    ScaleOut,
    SceneOut,
    SurfaceOut,
    TimingsOut,
)


def rounded(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def rounded_or_none(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else rounded(value, digits)


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
                confidence=rounded(d.confidence, 4),
                box=[rounded(v) for v in scene.image_box(d).as_list()],
                box_norm=[rounded(v, 4) for v in scene.image_box(d).normalised(width, height)],
            )
            for d in scene.detections
        ],
        "scale": ScaleOut(
            mm_per_px=rounded_or_none(scene.scale.mm_per_px, 5),
            source=scene.scale.source,
            approximate=scene.scale.approximate,
            reprojection_error_mm=None
            if scene.frame is None
            else rounded(scene.frame.homography.reprojection_error_mm),
            homography=None
            if scene.frame is None
            else [[float(f"{v:.10g}") for v in row] for row in scene.frame.homography.matrix],
        ),
        "surface": SurfaceOut(
            box=[rounded(v) for v in Box.around(scene.to_image(scene.surface.corners)).as_list()],
            polygon_norm=[[rounded(x, 4), rounded(y, 4)] for x, y in scene.surface.polygon_norm],
            source=scene.surface.source,
        ),
        "mugs": [
            MugOut(
                id=m.id,
                detection_id=m.detection.id,
                confidence=rounded(m.detection.confidence, 4),
                mug_score=rounded_or_none(m.mug_score, 4),
                center=[rounded(x), rounded(y)],
                center_norm=[rounded(x / width, 4), rounded(y / height, 4)],
                position_label=m.position_label,
                edge_distance=None
                if m.edge_distance_px is None
                else Distance(
                    px=rounded(m.edge_distance_px), mm=rounded_or_none(to_mm(m.edge_distance_px))
                ),
                nearest=[
                    NeighbourOut(
                        detection_id=n.detection.id,
                        class_name=n.detection.class_name,
                        gap_px=rounded(n.gap_px),
                        gap_mm=rounded_or_none(to_mm(n.gap_px)),
                    )
                    for n in m.nearest
                ],
            )
            for m, (x, y) in zip(
                scene.mugs, scene.to_image([m.center for m in scene.mugs]), strict=True
            )
        ],
        "rejected_mugs": [
            RejectedMugOut(
                detection_id=d.id,
                confidence=rounded(d.confidence, 4),
                mug_score=rounded_or_none(score, 4),
            )
            for d, score in scene.rejected
        ],
    }


def verdict_fields(scene: Scene, judgement: Judgement) -> dict[str, Any]:
    """``rules``, ``positioning`` and ``feedback`` of a result."""
    return {
        "rules": [_rule_result(result, scene) for result in judgement.results],
        "positioning": PositioningOut(
            compliant=judgement.compliant,
            safety_score=rounded(judgement.safety_score, 4),
            optimal_positions=[
                OptimalPosition(
                    mug_id=p.mug_id,
                    feasible=p.feasible,
                    center=None
                    if p.center is None
                    else [rounded(v) for v in scene.to_image([p.center])[0]],
                    move=None if p.move is None else move_out(p.move, scene, p.mug_id),
                    searched=p.searched,
                )
                for p in judgement.optimal_positions
            ],
            adjustments_needed=[
                AdjustmentNeeded(
                    mug_id=a.mug_id,
                    direction=move.direction,
                    distance_px=move.distance_px,
                    distance_mm=move.distance_mm,
                    reason=a.reason,
                )
                for a in judgement.adjustments
                for move in (move_out(a.move, scene, a.mug_id),)
            ],
        ),
        "feedback": FeedbackOut(
            summary=judgement.summary, recommendations=judgement.recommendations
        ),
    }


def move_out(move: Move, scene: Scene, mug_id: str | None) -> MoveOut:
    """A move as the picture shows it (pixels, and the direction, from the image's point of
    view) and as the table measures it (mm)."""
    to_mm = scene.scale.to_mm
    dx, dy = image_move(move, scene, mug_id)
    return MoveOut(
        dx_px=rounded(dx),
        dy_px=rounded(dy),
        dx_mm=rounded_or_none(to_mm(move.dx)),
        dy_mm=rounded_or_none(to_mm(move.dy)),
        distance_px=rounded(math.hypot(dx, dy)),
        distance_mm=rounded_or_none(to_mm(move.distance)),
        direction=direction_phrase(dx, dy),
    )


def image_move(move: Move, scene: Scene, mug_id: str | None) -> tuple[float, float]:
    """The move in image pixels: in a calibrated scene, from where the mug stands in the picture
    to where the moved mug would."""
    if scene.frame is None:
        return move.dx, move.dy
    start = next(m.center for m in scene.mugs if m.id == mug_id)
    (x0, y0), (x1, y1) = scene.to_image([start, (start[0] + move.dx, start[1] + move.dy)])
    return x1 - x0, y1 - y0


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
        adjustment=None
        if result.adjustment is None
        else move_out(result.adjustment, scene, result.mug_id),
    )


def models_out(models: ModelSet) -> ModelsOut:
    """What the loaded models are: every analysis says (``models``)."""
    detector = models.detector
    if detector is None:
        raise RuntimeError("a result needs a loaded detector")
    return ModelsOut(
        detector=DetectorOut(
            **_model_fields(detector.info),
            classes=[detector.classes[k] for k in sorted(detector.classes)],
        ),
        clip=None if models.clip is None else _clip_out(models.clip.info),
        device=models.device.name,
        dtype=models.device.dtype,
    )


def timings_out(stages: dict[str, float], total: float | None = None) -> TimingsOut:
    """Each stage's milliseconds; ``total`` is their sum unless the whole job's time is given."""
    return TimingsOut(
        **{stage: rounded(ms) for stage, ms in stages.items()},
        total=rounded(sum(stages.values()) if total is None else total),
    )


def image_analysis(
    image: ImageInfo,
    models: ModelsOut,
    scene: Scene,
    judgement: Judgement,
    *,
    scene_labels: dict[str, float] | None,
    artifacts: ArtifactsOut,
    embedding: np.ndarray | None,
) -> ImageAnalysis:
    """What the analysis found in one image: the measured scene, its verdict, CLIP's view."""
    return ImageAnalysis(
        image=image,
        models=models,
        **scene_fields(scene),
        scene=None if scene_labels is None else SceneOut(labels=scene_labels),
        **verdict_fields(scene, judgement),
        artifacts=artifacts,
        embedding=None if embedding is None else [rounded(v, 6) for v in embedding],
    )


def analysis_result(
    analysis: ImageAnalysis,
    *,
    analysis_id: str,
    metadata: dict[str, Any],
    persisted: PersistedOut,
    timings: TimingsOut,
) -> AnalysisResult:
    """A job's result for one image: the image's analysis and what the job did with it."""
    return AnalysisResult(
        **dict(analysis),
        analysis_id=analysis_id,
        metadata=metadata,
        persisted=persisted,
        timings_ms=timings,
    )


def analysis_record(result: AnalysisResult, *, cache_hit: bool, created_at: str) -> AnalysisRecord:
    """What the results store keeps of one analysis: the result as it stands while the record is
    written, its embedding included (find_similar)."""
    return AnalysisRecord(**dict(result), cache_hit=cache_hit, created_at=created_at)


def batch_output(
    items: Sequence[tuple[str, str, AnalysisResult | JobError]],
    stage_ms: Sequence[dict[str, float]],
    total_ms: float,
    *,
    with_embedding: bool,
) -> dict[str, Any]:
    """A batch job's output: each item's result or error (by item id and analysis id), and the
    summary with the stages' time added up over the images."""
    results: list[dict[str, Any]] = []
    done: list[AnalysisResult] = []
    for item_id, analysis_id, outcome in items:
        if isinstance(outcome, JobError):
            error = f"{outcome.code}: {outcome.message}"
            failed = BatchItemError(id=item_id, analysis_id=analysis_id, error=error)
            results.append(failed.model_dump())
        else:
            done.append(outcome)
            results.append({"id": item_id, **outcome.to_output(with_embedding=with_embedding)})
    timings = {
        stage: rounded(sum(ms.get(stage, 0.0) for ms in stage_ms))
        for stage in TimingsOut.model_fields
        if stage != "total"
    }
    timings["total"] = rounded(total_ms)
    summary = BatchSummary(
        images=len(items),
        ok=len(done),
        failed=len(items) - len(done),
        mugs=sum(len(result.mugs) for result in done),
        violations=sum(1 for result in done for rule in result.rules if rule.status == "fail"),
        timings_ms=timings,
    )
    return {"results": results, "summary": summary.model_dump()}


def evaluate_result(
    scene: Scene, judgement: Judgement, analysis_id: str | None, timings: EvaluateTimings
) -> EvaluateResult:
    return EvaluateResult(
        analysis_id=analysis_id,
        image_size=[scene.width, scene.height],
        **scene_fields(scene),
        **verdict_fields(scene, judgement),
        timings_ms=timings,
    )


def _model_fields(info: ModelInfo) -> dict[str, Any]:
    fields = dataclasses.asdict(info)
    del fields["checks_mugs"]  # CLIP's alone
    return fields


def _clip_out(info: ModelInfo) -> ClipOut:
    return ClipOut(**_model_fields(info), checks_mugs=info.checks_mugs)
