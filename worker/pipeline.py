"""The analyze action, top to bottom: intake -> cache -> detect -> CLIP -> geometry -> rules -> persist.

A job is one image or a batch; either way its images go to the model thread together (worker/batcher),
which batches them with those of the other jobs in flight. One bad image in a batch gives that item
an error and the others still run.
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
from PIL import Image
from pydantic import ValidationError

from models.clip import MUG_PROMPTS, SCENE_LABELS, crop_for_clip
from positioning.plane import CalibrationError, Homography, find_marker
from positioning.scene import Detection, Scene, build_scene
from rules.judge import Judgement, judge
from rules.kinds import clip_prompts
from rules.model import Rule, canonical
from rules.outcome import AttributeScores
from storage.keys import annotated_key, original_key
from worker.annotate import draw_annotations, encode_jpeg
from worker.batcher import ModelBatcher
from worker.cameras import CameraBook, CameraUse
from worker.errors import JobError
from worker.fetch import UrlFetcher
from worker.intake import DecodedImage, IntakeLimits, read_image
from worker.persist import JobWrites
from worker.progress import BatchProgress, ProgressSink
from worker.report import (
    analysis_record,
    analysis_result,
    batch_output,
    image_analysis,
    models_out,
    rounded,
    timings_out,
)
from worker.rulebook import RuleBook
from worker.runtime import ModelSet, Stores
from worker.schemas import (
    AnalysisResult,
    AnalyzeInput,
    ArtifactsOut,
    BatchItem,
    CacheState,
    Calibration,
    ImageAnalysis,
    ImageInfo,
    PersistedOut,
)
from worker.settings import Settings
from worker.timing import Profile, Stages
from worker.webhooks import WebhookDelivery

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One image of the job as it moves through the stages."""

    analysis_id: str
    field_prefix: str
    item_id: str | None
    writes: JobWrites
    metadata: dict[str, Any]
    stages: Stages = field(default_factory=Stages)
    image: DecodedImage | None = None
    error: JobError | None = None
    cache_key: str | None = None
    cache_answered: bool = True
    cached: ImageAnalysis | None = None
    detections: list[Detection] = field(default_factory=list)
    mug_scores: dict[str, float] = field(default_factory=dict)
    crop_embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    scene_labels: dict[str, float] | None = None
    embedding: np.ndarray | None = None
    scene: Scene | None = None
    judgement: Judgement | None = None
    camera: CameraUse | None = None  # the job's camera profile, when it named one


class Analyzer:
    """Runs ``analyze`` jobs against the models and stores built once at start."""

    def __init__(
        self,
        settings: Settings,
        models: ModelSet,
        stores: Stores,
        batcher: ModelBatcher,
        rulebook: RuleBook,
        cameras: CameraBook,
        webhooks: WebhookDelivery | None = None,
    ) -> None:
        self.cameras = cameras
        self.webhooks = webhooks
        self.settings = settings
        self.models = models
        self.stores = stores
        self.batcher = batcher
        self.limits = IntakeLimits.from_settings(settings)
        self.fetcher = UrlFetcher(self.limits)
        self.rulebook = rulebook

    def run(
        self,
        request: AnalyzeInput,
        job_id: str,
        writes: JobWrites,
        progress: ProgressSink | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        self._check_request(request)
        request, camera = self.cameras.apply(request)
        rules = self.rulebook.resolve(request.rules, request.rule_set)
        # only a batch reports progress: one image is done as soon as it is answered
        batch = BatchProgress(
            progress if request.images is not None else None, len(request.images or [1])
        )
        batch.stage("decode")
        items = self._intake(request, job_id, writes)
        for item in items:
            item.camera = camera
        self._read_cache(items, request, rules)
        fresh = [item for item in items if item.image is not None and item.cached is None]
        batch.stage("detect", failed=sum(item.error is not None for item in items))
        self._detect(fresh, request)
        batch.stage("clip")
        self._clip(fresh, request)
        batch.stage("analyze")
        with_embedding = request.options.return_embedding
        if request.images is None:
            only = items[0]
            if only.error is not None:
                raise only.error
            # one image: its result's total is the whole job's time
            result = self._finish(only, request, rules, job_started=started)
            return result.to_output(with_embedding=with_embedding)
        outcomes: list[tuple[str, str, AnalysisResult | JobError]] = []
        for item in items:
            outcome: AnalysisResult | JobError
            if item.error is None:
                outcome = self._finish(item, request, rules)
                batch.finished()
            else:
                outcome = item.error
            outcomes.append((item.item_id or "", item.analysis_id, outcome))
        return batch_output(
            outcomes,
            [item.stages.ms() for item in items],
            (time.perf_counter() - started) * 1000.0,
            with_embedding=with_embedding,
        )

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

    def _intake(self, request: AnalyzeInput, job_id: str, writes: JobWrites) -> list[Item]:
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
            item = Item(analysis_id, prefix, item_id, writes, metadata)
            with item.stages("decode"):
                try:
                    item.image = read_image(
                        source,
                        field_prefix=prefix,
                        limits=self.limits,
                        objects=self.stores.objects,
                        fetcher=self.fetcher,
                    )
                except JobError as error:
                    item.error = error
            items.append(item)
        return items

    def _read_cache(self, items: list[Item], request: AnalyzeInput, rules: list[Rule]) -> None:
        if not request.options.cache:
            return
        for item in items:
            if item.image is None:
                continue
            item.cache_key = self._cache_key(item.image, request, rules)
            entry, item.cache_answered = item.writes.cache_get(item.cache_key)
            item.cached = None if entry is None else _cached_analysis(entry)

    def _detect(self, items: list[Item], request: AnalyzeInput) -> None:
        if not items:
            return
        with Profile() as took:
            found = self.batcher.detect(
                [item.image.image for item in items if item.image is not None],
                request.options.detector_options(),
            )
        for item, detections in zip(items, found, strict=True):
            item.detections = detections
            item.stages.share("detect", took.ms / len(items))

    def _clip(self, items: list[Item], request: AnalyzeInput) -> None:
        """One batched CLIP pass over every whole image and every mug candidate's crop."""
        clip = self.models.clip
        if not items or clip is None or not request.options.clip:
            return
        with Profile() as took:
            pictures: list[Image.Image] = [item.image.image for item in items if item.image]
            owners: list[tuple[Item, str]] = []
            for item in items:
                assert item.image is not None
                for detection in self._mug_candidates(item.detections):
                    pictures.append(crop_for_clip(item.image.image, detection.box))
                    owners.append((item, detection.id))
            embeddings = self.batcher.embed_images(pictures)
            whole, crops = embeddings[: len(items)], embeddings[len(items) :]
            labels = self.batcher.call(lambda: clip.zero_shot(whole, SCENE_LABELS))
            for item, embedding, probabilities in zip(items, whole, labels, strict=True):
                item.embedding = embedding
                item.scene_labels = {
                    label: rounded(p, 4)
                    for label, p in zip(SCENE_LABELS, probabilities, strict=True)
                }
            if owners:
                mug_probability = self.batcher.call(lambda: clip.zero_shot(crops, MUG_PROMPTS))[
                    :, 0
                ]
                for (item, detection_id), crop, score in zip(
                    owners, crops, mug_probability, strict=True
                ):
                    item.crop_embeddings[detection_id] = crop
                    item.mug_scores[detection_id] = float(score)
        for item in items:
            item.stages.share("clip", took.ms / len(items))

    def _finish(
        self,
        item: Item,
        request: AnalyzeInput,
        rules: list[Rule],
        job_started: float | None = None,
    ) -> AnalysisResult:
        """Measure, judge, draw and keep one image, or answer it from the cache; keep the record;
        then build the result, once, from the analysis and what was kept."""
        if item.cached is None:
            analysis, objects_written, cache_state = self._analyse(item, request, rules)
        else:
            analysis, objects_written = self._answer_from_cache(item, item.cached, request)
            cache_state = "hit"
        persisted = self._keep(item, analysis, request, objects_written, cache_state)
        total = None if job_started is None else (time.perf_counter() - job_started) * 1000.0
        return analysis_result(
            analysis,
            analysis_id=item.analysis_id,
            metadata=item.metadata,
            persisted=persisted,
            timings=timings_out(item.stages.ms(), total),
        )

    def _analyse(
        self, item: Item, request: AnalyzeInput, rules: list[Rule]
    ) -> tuple[ImageAnalysis, bool, CacheState]:
        """Measure and judge the image, draw and store its pictures: its analysis, whether the
        pictures were written, and what the cache says so far."""
        assert item.image is not None
        with item.stages("analyze"):
            scene = item.scene = self._scene(item, request)
        with item.stages("rules"):
            judgement = item.judgement = judge(scene, rules, self._attribute_scores(item, rules))
        cache_state: CacheState = "miss" if request.options.cache else "disabled"
        if not item.cache_answered:
            cache_state = "unavailable"
        with item.stages("persist"):
            artifacts, written = self._store_objects(item, self._keys(item, request), request)
        analysis = image_analysis(
            self._image_info(item, request),
            models_out(self.models),
            scene,
            judgement,
            scene_labels=item.scene_labels,
            artifacts=artifacts,
            embedding=item.embedding,
        )
        return analysis, written, cache_state

    def _answer_from_cache(
        self, item: Item, cached: ImageAnalysis, request: AnalyzeInput
    ) -> tuple[ImageAnalysis, bool]:
        """The cached analysis with this job's own source of the picture and this worker's
        models (the same checksums: they key the cache); the original is kept as for any job."""
        with item.stages("persist"):
            artifacts, written = self._store_objects(item, cached.artifacts, request)
        update = {
            "image": self._image_info(item, request),
            "models": models_out(self.models),
            "artifacts": artifacts,
        }
        return cached.model_copy(update=update), written

    def _keep(
        self,
        item: Item,
        analysis: ImageAnalysis,
        request: AnalyzeInput,
        objects_written: bool,
        cache_state: CacheState,
    ) -> PersistedOut:
        """Cache a fresh analysis, store the record (with its embedding, for find_similar) and
        queue the violation webhook when a rule failed."""
        store = request.options.store
        with item.stages("persist"):
            if cache_state == "miss" and item.cache_key:
                entry = analysis.model_dump(mode="json", by_alias=True)
                cache_state = item.writes.cache_set(item.cache_key, entry)
            persisted = PersistedOut(record=store, objects=objects_written, cache=cache_state)
            if not store and self.webhooks is None:
                return persisted
            created_at = datetime.now(UTC).isoformat()
            so_far = analysis_result(
                analysis,
                analysis_id=item.analysis_id,
                metadata=item.metadata,
                persisted=persisted,
                timings=timings_out(item.stages.ms()),
            )
            if self.webhooks is not None:
                self.webhooks.announce(so_far, created_at)
            if not store:
                return persisted
            record = analysis_record(
                so_far, cache_hit=item.cached is not None, created_at=created_at
            )
            written = item.writes.put_record(record.model_dump(mode="json", by_alias=True))
            return persisted.model_copy(update={"record": written})

    # ------------------------------------------------------------------ helpers

    def _mug_candidates(self, detections: list[Detection]) -> list[Detection]:
        return [d for d in detections if d.class_name.lower() in self.settings.mug_classes]

    def _scene(self, item: Item, request: AnalyzeInput) -> Scene:
        """The mug check keeps a cup when CLIP agrees it is a mug, and reports the others as
        rejected. A CLIP whose manifest says it was not made to tell (``checks_mugs: false``, e.g.
        a random-weight model) reports its score, but decides nothing."""
        assert item.image is not None
        judging = self.models.clip is not None and self.models.clip.info.checks_mugs
        mugs, rejected = [], []
        for detection in self._mug_candidates(item.detections):
            score = item.mug_scores.get(detection.id)
            if score is None or not judging or score >= self.settings.mug_score_min:
                mugs.append((detection, score))
            else:
                rejected.append((detection, score))
        calibration = request.calibration
        scene = build_scene(
            item.image.width,
            item.image.height,
            item.detections,
            mugs,
            polygon_norm=request.surface,
            mm_per_px=calibration.mm_per_px if calibration else None,
            reference=calibration.reference_pair() if calibration else None,
            default_references=self.settings.reference_sizes_mm,
            rejected=rejected,
            homography=_table_plane(calibration, item.image.image),
        )
        return scene if item.camera is None else item.camera.mark(scene)

    def _attribute_scores(self, item: Item, rules: list[Rule]) -> AttributeScores | None:
        """CLIP's preference for each attribute rule's prompt on each mug's crop (None: no CLIP)."""
        clip, scene = self.models.clip, item.scene
        if clip is None or scene is None or not item.crop_embeddings:
            return None

        def score() -> AttributeScores:  # on the model thread, in one visit
            scores = {}
            for rule in rules:
                prompts = clip_prompts(rule)
                if prompts is None:
                    continue
                for mug in scene.mugs:
                    crop = item.crop_embeddings[mug.detection.id]
                    probability = clip.zero_shot(crop[None, :], prompts)[0, 0]
                    scores[(rule.rule_id, mug.id)] = float(probability)
            return scores

        return self.batcher.call(score)

    def _cache_key(self, image: DecodedImage, request: AnalyzeInput, rules: list[Rule]) -> str:
        """Everything that decides an analysis: image, models, options, calibration, surface, rules."""
        options = request.options.model_dump(exclude={"cache"})
        basis = {
            "image": image.sha256,
            "models": self.models.fingerprint(),
            "options": options,
            "calibration": request.calibration.model_dump() if request.calibration else None,
            "surface": request.surface,
            "camera": request.camera,  # its calibration and surface are above; the name is shown
            "rules": canonical(rules),
            "settings": {
                "mug_classes": self.settings.mug_classes,
                "mug_score_min": self.settings.mug_score_min,
                "reference_sizes_mm": self.settings.reference_sizes_mm,
            },
        }
        encoded = json.dumps(basis, sort_keys=True, separators=(",", ":")).encode()
        return "analysis:" + hashlib.sha256(encoded).hexdigest()

    @staticmethod
    def _keys(item: Item, request: AnalyzeInput) -> ArtifactsOut:
        """Where the original and the annotated image go (none when the job stores nothing)."""
        image = item.image
        assert image is not None
        store = request.options.store
        return ArtifactsOut(
            original_key=original_key(image.sha256, image.format) if store else None,
            annotated_key=(
                annotated_key(item.analysis_id) if store and request.options.annotate else None
            ),
            annotated_url=None,
        )

    def _store_objects(
        self, item: Item, keys: ArtifactsOut, request: AnalyzeInput
    ) -> tuple[ArtifactsOut, bool]:
        """Write the original (once per content) and the annotated image (when this job drew
        one): the keys with the annotated image's URL, and False if a write failed."""
        if not request.options.store:
            return keys, False
        assert item.image is not None
        written = True
        if keys.original_key:
            written &= item.writes.put_object(
                keys.original_key, item.image.data, f"image/{item.image.format}", once=True
            )
        key = keys.annotated_key
        if key is None:
            return keys, written
        if item.scene is not None and item.judgement is not None:
            drawn = draw_annotations(item.image.image, item.scene, item.judgement)
            written &= item.writes.put_object(key, encode_jpeg(drawn), "image/jpeg")
        return keys.model_copy(update={"annotated_url": item.writes.object_url(key)}), written

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


def _table_plane(calibration: Calibration | None, image: Image.Image) -> Homography | None:
    """The table plane a calibration gives: through its points, or from its marker found in
    the image (a marker not found is the job's error, by name)."""
    if calibration is None:
        return None
    if calibration.marker is None:
        return calibration.point_homography()
    marker = calibration.marker
    try:
        gray = np.asarray(image.convert("L"))
        return find_marker(gray, marker.dictionary, marker.id, marker.size_mm)
    except CalibrationError as error:
        raise JobError("invalid_input", str(error)) from error


def _cached_analysis(entry: dict[str, Any]) -> ImageAnalysis | None:
    """A cache entry as an analysis; one this worker cannot read (another version's) is a miss."""
    try:
        return ImageAnalysis.model_validate(entry)
    except ValidationError:
        log.warning("result cache entry of another shape; analysing again")
        return None
