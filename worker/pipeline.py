"""The analyze action, top to bottom: intake -> cache -> detect -> CLIP -> geometry -> rules -> persist.

A job is one image or a batch; either way the detector and CLIP each run once, batched, over every
image that needs them. One bad image in a batch gives that item an error and the others still run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from models.clip import MUG_PROMPTS, SCENE_LABELS
from models.detector import DetectorOptions
from positioning.geometry import Box
from positioning.scene import Detection, Scene, build_scene
from rules.evaluate import AttributeScores
from rules.judge import Judgement, judge
from rules.model import AttributeRule, Rule, canonical
from storage.keys import annotated_key, original_key
from worker.annotate import draw_annotations, encode_jpeg
from worker.errors import JobError
from worker.intake import DecodedImage, IntakeLimits, read_image
from worker.persist import Persister
from worker.progress import BatchProgress, ProgressSink
from worker.report import ms_since, r, scene_fields, verdict_fields
from worker.rulebook import RuleBook
from worker.runtime import ModelSet, Stores
from worker.schemas import (
    AnalysisResult,
    AnalyzeInput,
    ArtifactsOut,
    BatchItem,
    BatchItemError,
    BatchSummary,
    CacheState,
    ImageInfo,
    PersistedOut,
    SceneOut,
    TimingsOut,
)
from worker.settings import Settings

log = logging.getLogger(__name__)

CROP_MARGIN = 0.1
# CLIP's processor scales a crop's shortest side to 224 px: a 4000x1 box would become 896000x224.
# Crops longer than this ratio are padded to it first (CLIP only sees the middle square anyway).
CROP_MAX_ASPECT = 4
# Everything in a result that belongs to one job rather than to the image and its analysis.
PER_JOB_KEYS = ("analysis_id", "metadata", "timings_ms", "persisted")


@dataclass
class Item:
    """One image of the job as it moves through the stages."""

    analysis_id: str
    field_prefix: str
    item_id: str | None
    metadata: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    image: DecodedImage | None = None
    error: JobError | None = None
    cache_key: str | None = None
    cache_answered: bool = True
    cached: dict[str, Any] | None = None
    detections: list[Detection] = field(default_factory=list)
    mug_scores: dict[str, float] = field(default_factory=dict)
    crop_embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    scene_labels: dict[str, float] | None = None
    embedding: np.ndarray | None = None
    scene: Scene | None = None
    judgement: Judgement | None = None
    result: dict[str, Any] | None = None


class Analyzer:
    """Runs ``analyze`` jobs against the models and stores built once at start."""

    def __init__(
        self,
        settings: Settings,
        models: ModelSet,
        stores: Stores,
        persister: Persister,
        rulebook: RuleBook,
    ) -> None:
        self.settings = settings
        self.models = models
        self.stores = stores
        self.persister = persister
        self.limits = IntakeLimits.from_settings(settings)
        self.rulebook = rulebook

    def run(
        self, request: AnalyzeInput, job_id: str, progress: ProgressSink | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        self._check_request(request)
        rules = self.rulebook.resolve(request.rules, request.rule_set)
        # only a batch reports progress: one image is done as soon as it is answered
        batch = BatchProgress(
            progress if request.images is not None else None, len(request.images or [1])
        )
        batch.stage("decode")
        items = self._intake(request, job_id)
        self._read_cache(items, request, rules)
        fresh = [item for item in items if item.image is not None and item.cached is None]
        batch.stage("detect", failed=sum(item.error is not None for item in items))
        self._detect(fresh, request)
        batch.stage("clip")
        self._clip(fresh, request)
        batch.stage("analyze")
        for item in items:
            if item.error is None:
                self._finish(item, request, rules)
                batch.finished()
        if request.images is None:
            only = items[0]
            if only.error is not None:
                raise only.error
            assert only.result is not None
            only.result["timings_ms"]["total"] = r(ms_since(started))
            return only.result
        return self._batch_output(items, started)

    # ------------------------------------------------------------------ stages

    def _check_request(self, request: AnalyzeInput) -> None:
        if request.images is not None and len(request.images) > self.settings.max_batch:
            raise JobError(
                "invalid_input",
                f"images: at most {self.settings.max_batch} images per job "
                f"(got {len(request.images)}); split the batch",
            )
        if self.models.detector is None:
            raise JobError("model_unavailable", self.models.problem("detector"))
        if request.options.clip and self.models.clip is None:
            raise JobError(
                "model_unavailable",
                f"{self.models.problem('clip')}; or send options.clip = false",
            )

    def _intake(self, request: AnalyzeInput, job_id: str) -> list[Item]:
        sources = (
            [(None, "", request)]
            if request.images is None
            else [(item.id, f"images[{i}].", item) for i, item in enumerate(request.images)]
        )
        items = []
        for item_id, prefix, source in sources:
            analysis_id = job_id if item_id is None else f"{job_id}:{item_id}"
            metadata = request.metadata
            if isinstance(source, BatchItem):
                metadata = {**request.metadata, **source.metadata}
            item = Item(analysis_id, prefix, item_id, metadata)
            start = time.perf_counter()
            try:
                item.image = read_image(
                    source,
                    field_prefix=prefix,
                    limits=self.limits,
                    objects=self.stores.objects,
                )
            except JobError as error:
                item.error = error
            item.timings["decode"] = ms_since(start)
            items.append(item)
        return items

    def _read_cache(self, items: list[Item], request: AnalyzeInput, rules: list[Rule]) -> None:
        if not request.options.cache:
            return
        for item in items:
            if item.image is None:
                continue
            item.cache_key = self._cache_key(item.image, request, rules)
            item.cached, item.cache_answered = self.persister.cache_get(item.cache_key)

    def _detect(self, items: list[Item], request: AnalyzeInput) -> None:
        if not items:
            return
        options = request.options
        start = time.perf_counter()
        assert self.models.detector is not None
        found = self.models.detector.predict(
            [item.image.image for item in items if item.image is not None],
            DetectorOptions(
                conf=options.conf,
                iou=options.iou,
                imgsz=options.imgsz,
                max_det=options.max_det,
                augment=options.augment,
            ),
        )
        share = ms_since(start) / len(items)
        for item, detections in zip(items, found, strict=True):
            item.detections = detections
            item.timings["detect"] = share

    def _clip(self, items: list[Item], request: AnalyzeInput) -> None:
        """One batched CLIP pass over every whole image and every mug candidate's crop."""
        clip = self.models.clip
        if not items or clip is None or not request.options.clip:
            return
        start = time.perf_counter()
        pictures: list[Image.Image] = [item.image.image for item in items if item.image]
        owners: list[tuple[Item, str]] = []
        for item in items:
            assert item.image is not None
            for detection in self._mug_candidates(item.detections):
                pictures.append(_crop(item.image.image, detection.box))
                owners.append((item, detection.id))
        embeddings = clip.embed_images(pictures)
        whole, crops = embeddings[: len(items)], embeddings[len(items) :]
        labels = clip.zero_shot(whole, SCENE_LABELS)
        for item, embedding, probabilities in zip(items, whole, labels, strict=True):
            item.embedding = embedding
            item.scene_labels = {
                label: r(p, 4) for label, p in zip(SCENE_LABELS, probabilities, strict=True)
            }
        if owners:
            mug_probability = clip.zero_shot(crops, MUG_PROMPTS)[:, 0]
            for (item, detection_id), crop, score in zip(
                owners, crops, mug_probability, strict=True
            ):
                item.crop_embeddings[detection_id] = crop
                item.mug_scores[detection_id] = float(score)
        share = ms_since(start) / len(items)
        for item in items:
            item.timings["clip"] = share

    def _finish(self, item: Item, request: AnalyzeInput, rules: list[Rule]) -> None:
        """Measure, judge, draw and keep one image; or answer it from the cache."""
        if item.cached is not None:
            # the same picture, but this job's own source of it
            result = {
                **item.cached,
                "image": self._image_info(item, request).model_dump(),
                # same checksums (they key the cache), but this worker's source of them
                "models": self.models.describe().model_dump(mode="json", by_alias=True),
            }
            item.timings.update(analyze=0.0, rules=0.0)
            cache_state: CacheState = "hit"
        else:
            start = time.perf_counter()
            item.scene = self._scene(item, request)
            item.timings["analyze"] = ms_since(start)
            start = time.perf_counter()
            item.judgement = judge(item.scene, rules, self._attribute_scores(item, rules))
            item.timings["rules"] = ms_since(start)
            result = self._result(item, item.scene, item.judgement, request)
            cache_state = "miss" if request.options.cache else "disabled"
            if not item.cache_answered:
                cache_state = "unavailable"
        start = time.perf_counter()
        objects_written = self._store_objects(item, result, request)
        if cache_state == "miss" and item.cache_key:
            entry = {k: v for k, v in result.items() if k not in PER_JOB_KEYS}
            cache_state = self.persister.cache_set(item.cache_key, entry)
        result.update(
            analysis_id=item.analysis_id,
            metadata=item.metadata,
            persisted={
                "record": request.options.store,
                "objects": objects_written,
                "cache": cache_state,
            },
        )
        item.timings["persist"] = ms_since(start)
        result["timings_ms"] = _timings(item.timings)
        if request.options.store:
            result["persisted"]["record"] = self._store_record(item, result)
            item.timings["persist"] = ms_since(start)
            result["timings_ms"] = _timings(item.timings)
        if not request.options.return_embedding:
            result.pop("embedding", None)
        item.result = result

    # ------------------------------------------------------------------ helpers

    def _mug_candidates(self, detections: list[Detection]) -> list[Detection]:
        return [d for d in detections if d.class_name.lower() in self.settings.mug_classes]

    def _scene(self, item: Item, request: AnalyzeInput) -> Scene:
        """The mug check keeps a cup when CLIP agrees it is a mug. A demo CLIP (random weights)
        cannot tell, so then its score is reported but decides nothing."""
        assert item.image is not None
        judging = self.models.clip is not None and not self.models.clip.info.demo
        mugs = []
        for detection in self._mug_candidates(item.detections):
            score = item.mug_scores.get(detection.id)
            if score is None or not judging or score >= self.settings.mug_score_min:
                mugs.append((detection, score))
        calibration = request.calibration
        return build_scene(
            item.image.width,
            item.image.height,
            item.detections,
            mugs,
            polygon_norm=request.surface,
            mm_per_px=calibration.mm_per_px if calibration else None,
            reference=calibration.reference_pair() if calibration else None,
            default_references=self.settings.reference_sizes_mm,
        )

    def _attribute_scores(self, item: Item, rules: list[Rule]) -> AttributeScores | None:
        """CLIP's preference for each attribute rule's prompt on each mug's crop (None: no CLIP)."""
        clip = self.models.clip
        if clip is None or item.scene is None or not item.crop_embeddings:
            return None
        scores = {}
        for rule in rules:
            if not isinstance(rule, AttributeRule):
                continue
            for mug in item.scene.mugs:
                crop = item.crop_embeddings[mug.detection.id]
                probability = clip.zero_shot(crop[None, :], (rule.prompt, rule.negative))[0, 0]
                scores[(rule.rule_id, mug.id)] = float(probability)
        return scores

    def _cache_key(self, image: DecodedImage, request: AnalyzeInput, rules: list[Rule]) -> str:
        """Everything that decides an analysis: image, models, options, calibration, surface, rules."""
        options = request.options.model_dump(exclude={"cache"})
        basis = {
            "image": image.sha256,
            "models": self.models.fingerprint(),
            "options": options,
            "calibration": request.calibration.model_dump() if request.calibration else None,
            "surface": request.surface,
            "rules": canonical(rules),
            "settings": {
                "mug_classes": self.settings.mug_classes,
                "mug_score_min": self.settings.mug_score_min,
                "reference_sizes_mm": self.settings.reference_sizes_mm,
            },
        }
        encoded = json.dumps(basis, sort_keys=True, separators=(",", ":")).encode()
        return "analysis:" + hashlib.sha256(encoded).hexdigest()

    def _store_objects(self, item: Item, result: dict[str, Any], request: AnalyzeInput) -> bool:
        """Write the original (once per content) and the annotated image; False if one failed."""
        if not request.options.store:
            return False
        assert item.image is not None
        artifacts = result["artifacts"]
        written = True
        if artifacts["original_key"]:
            written &= self.persister.put_object(
                artifacts["original_key"], item.image.data, f"image/{item.image.format}", once=True
            )
        key = artifacts["annotated_key"]
        if key and item.scene is not None and item.judgement is not None:
            drawn = draw_annotations(item.image.image, item.scene, item.judgement)
            written &= self.persister.put_object(key, encode_jpeg(drawn), "image/jpeg")
        if key:
            artifacts["annotated_url"] = self.persister.object_url(key)
        return written

    def _store_record(self, item: Item, result: dict[str, Any]) -> bool:
        """Keep the analysis (with its embedding, for find_similar); a cache hit says it was one."""
        record = {
            **result,
            "cache_hit": item.cached is not None,
            "created_at": datetime.now(UTC).isoformat(),
        }
        return self.persister.put_record(record)

    def _result(
        self, item: Item, scene: Scene, judgement: Judgement, request: AnalyzeInput
    ) -> dict[str, Any]:
        image = item.image
        assert image is not None
        store = request.options.store
        original = original_key(image.sha256, image.format) if store else None
        annotated = annotated_key(item.analysis_id) if store and request.options.annotate else None
        result = AnalysisResult(
            analysis_id=item.analysis_id,
            image=self._image_info(item, request),
            models=self.models.describe(),
            **scene_fields(scene),
            scene=None if item.scene_labels is None else SceneOut(labels=item.scene_labels),
            **verdict_fields(scene, judgement),
            artifacts=ArtifactsOut(
                original_key=original, annotated_key=annotated, annotated_url=None
            ),
            persisted=PersistedOut(record=False, objects=False, cache="disabled"),
            embedding=None if item.embedding is None else [r(v, 6) for v in item.embedding],
            timings_ms=TimingsOut(),
            metadata={},
        )
        output = result.to_output()
        output["embedding"] = result.embedding
        return output

    @staticmethod
    def _image_info(item: Item, request: AnalyzeInput) -> ImageInfo:
        image = item.image
        assert image is not None
        original = original_key(image.sha256, image.format) if request.options.store else None
        return ImageInfo(
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            format=image.format,
            source=image.source,
            key=image.key or original,
        )

    def _batch_output(self, items: list[Item], started: float) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for item in items:
            if item.error is not None:
                results.append(
                    BatchItemError(
                        id=item.item_id or "",
                        analysis_id=item.analysis_id,
                        error=f"{item.error.code}: {item.error.message}",
                    ).model_dump()
                )
            else:
                assert item.result is not None
                results.append({"id": item.item_id, **item.result})
        done = [item.result for item in items if item.result is not None]
        stages = ("decode", "detect", "clip", "analyze", "rules", "persist")
        timings = {stage: r(sum(i.timings.get(stage, 0.0) for i in items)) for stage in stages}
        timings["total"] = r(ms_since(started))
        summary = BatchSummary(
            images=len(items),
            ok=len(done),
            failed=len(items) - len(done),
            mugs=sum(len(r["mugs"]) for r in done),
            violations=sum(1 for r in done for rule in r["rules"] if rule["status"] == "fail"),
            timings_ms=timings,
        )
        return {"results": results, "summary": summary.model_dump()}


def _crop(image: Image.Image, box: Box) -> Image.Image:
    """The box with a small margin of context, the way CLIP saw objects in its training photos."""
    margin_x, margin_y = box.width * CROP_MARGIN, box.height * CROP_MARGIN
    left = min(max(0, int(box.x1 - margin_x)), image.width - 1)
    top = min(max(0, int(box.y1 - margin_y)), image.height - 1)
    right = min(max(left + 1, round(box.x2 + margin_x)), image.width)
    bottom = min(max(top + 1, round(box.y2 + margin_y)), image.height)
    crop = image.crop((left, top, right, bottom))
    long_side, short_side = max(crop.size), min(crop.size)
    if long_side <= CROP_MAX_ASPECT * short_side:
        return crop
    # and no more pixels than CLIP will use: the long side at most 4 x its 224-px input
    crop.thumbnail((CROP_MAX_ASPECT * 224, CROP_MAX_ASPECT * 224))
    padded = (
        (crop.width, -(-crop.width // CROP_MAX_ASPECT))
        if crop.width > crop.height
        else (-(-crop.height // CROP_MAX_ASPECT), crop.height)
    )
    return ImageOps.pad(crop, padded, color=(128, 128, 128))


def _timings(stages: dict[str, float]) -> dict[str, float]:
    timings = {key: r(value) for key, value in stages.items()}
    return TimingsOut(**timings, total=r(sum(stages.values()))).model_dump()
