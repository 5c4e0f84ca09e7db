"""The evaluate action: judge rules against given detections, or re-judge a stored analysis,
without running a model (SPEC 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from positioning.geometry import Box
from positioning.plane import Homography
from positioning.scene import Detection, Scene, build_scene
from rules.judge import judge
from worker.cameras import CameraBook
from worker.errors import JobError
from worker.report import evaluate_result, rounded
from worker.rulebook import RuleBook
from worker.schemas import EvaluateInput, EvaluateTimings
from worker.settings import Settings
from worker.timing import Profile


class Evaluator:
    def __init__(self, settings: Settings, rulebook: RuleBook, cameras: CameraBook) -> None:
        self.settings = settings
        self.rulebook = rulebook
        self.cameras = cameras

    def run(self, request: EvaluateInput) -> dict[str, Any]:
        with Profile() as total:
            request, camera = self.cameras.apply(request)
            rules = self.rulebook.resolve(request.rules, request.rule_set)
            with Profile() as analysed:
                scene = (
                    self._stored_scene(request)
                    if request.analysis_id
                    else self._given_scene(request)
                )
                if camera is not None:
                    scene = camera.mark(scene)
            with Profile() as judged:
                judgement = judge(scene, rules, attribute_scores=None)
        timings = EvaluateTimings(
            analyze=rounded(analysed.ms), rules=rounded(judged.ms), total=rounded(total.ms)
        )
        result = evaluate_result(scene, judgement, request.analysis_id, timings)
        return result.model_dump(mode="json", by_alias=True)

    def _given_scene(self, request: EvaluateInput) -> Scene:
        assert request.detections is not None and request.image_size is not None
        width, height = request.image_size
        detections = []
        for index, given in enumerate(request.detections, start=1):
            detections.append(
                Detection(
                    id=given.id or f"d{index}",
                    class_name=given.class_name.strip().lower(),
                    class_id=given.class_id if given.class_id is not None else -1,
                    confidence=given.confidence,
                    box=Box.from_list(list(given.box)),
                )
            )
        if len({d.id for d in detections}) != len(detections):
            raise JobError("invalid_input", "detections: ids must be unique")
        mugs: list[tuple[Detection, float | None]] = [
            (d, None) for d in detections if d.class_name in self.settings.mug_classes
        ]
        return self._scene(request, width, height, detections, mugs)

    def _stored_scene(self, request: EvaluateInput) -> Scene:
        """The detections and the mugs that passed the CLIP check, as the analysis stored them."""
        assert request.analysis_id is not None
        record = self.rulebook.records.get_analysis(request.analysis_id)
        if record is None:
            raise JobError("not_found", f"analysis_id: no analysis {request.analysis_id[:80]!r}")
        detections = {
            d["id"]: Detection(
                id=d["id"],
                class_name=d["class"],
                class_id=d["class_id"],
                confidence=d["confidence"],
                box=Box.from_list(d["box"]),
            )
            for d in record["detections"]
        }
        mugs = [(detections[m["detection_id"]], m["mug_score"]) for m in record["mugs"]]
        rejected = [
            (detections[r["detection_id"]], r["mug_score"]) for r in record.get("rejected_mugs", [])
        ]
        image = record["image"]
        scene_detections = list(detections.values())
        return self._scene(
            request, image["width"], image["height"], scene_detections, mugs, record, rejected
        )

    def _scene(
        self,
        request: EvaluateInput,
        width: int,
        height: int,
        detections: list[Detection],
        mugs: list[tuple[Detection, float | None]],
        stored: dict[str, Any] | None = None,
        rejected: Sequence[tuple[Detection, float | None]] = (),
    ) -> Scene:
        """Measure the scene; a stored analysis keeps the scale and surface it was given, and the
        candidates its mug check rejected stay rejected."""
        calibration = request.calibration
        mm_per_px = calibration.mm_per_px if calibration else None
        if calibration is not None and calibration.marker is not None:
            raise JobError(
                "invalid_input",
                "calibration.marker: evaluate has no image to find the marker in; give "
                "calibration.points (or analyze the image)",
            )
        homography = calibration.point_homography() if calibration else None
        polygon = request.surface
        if stored and calibration is None and stored["scale"]["source"] == "input":
            mm_per_px = stored["scale"]["mm_per_px"]
        if stored and calibration is None and stored["scale"].get("homography"):
            homography = Homography(
                np.array(stored["scale"]["homography"], dtype=float),
                stored["scale"].get("reprojection_error_mm") or 0.0,
                stored["scale"]["source"],
            )
        if stored and polygon is None and stored["surface"]["source"] == "input":
            polygon = [(x, y) for x, y in stored["surface"]["polygon_norm"]]
        return build_scene(
            width,
            height,
            detections,
            mugs,
            polygon_norm=polygon,
            mm_per_px=mm_per_px,
            reference=calibration.reference_pair() if calibration else None,
            default_references=self.settings.reference_sizes_mm,
            rejected=rejected,
            homography=homography,
        )
