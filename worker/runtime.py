"""What the worker builds once at start: the models (loaded and warmed up) and the stores."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from models.runtime import Device
from storage.base import ObjectStore, RecordStore, ResultCache
from storage.embedded import JsonRecordStore, LocalObjectStore, LruResultCache
from worker.schemas import DetectorOut, ModelOut, ModelsOut
from worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ModelSet:
    """The loaded models; a model that failed to load is ``None`` with the reason in ``problems``."""

    device: Device
    detector: Any = None
    clip: Any = None
    problems: dict[str, str] = field(default_factory=dict)

    def problem(self, name: str) -> str:
        return self.problems.get(name, f"the {name} model is not loaded")

    def describe(self) -> ModelsOut:
        if self.detector is None:
            raise RuntimeError("describe() needs a loaded detector")
        detector = self.detector.info
        return ModelsOut(
            detector=DetectorOut(
                name=detector.name,
                sha256=detector.sha256,
                demo=detector.demo,
                classes=[self.detector.classes[k] for k in sorted(self.detector.classes)],
            ),
            clip=None
            if self.clip is None
            else ModelOut(
                name=self.clip.info.name, sha256=self.clip.info.sha256, demo=self.clip.info.demo
            ),
            device=self.device.name,
            dtype=self.device.dtype,
        )

    def fingerprint(self) -> dict[str, str | None]:
        """The models' checksums: part of every cache key, so new weights never hit old results."""
        return {
            "detector": None if self.detector is None else self.detector.info.sha256,
            "clip": None if self.clip is None else self.clip.info.sha256,
            "dtype": self.device.dtype,
        }


def load_models(settings: Settings) -> ModelSet:
    """Load YOLO and CLIP from MODEL_DIR and warm both up at the real input size."""
    from models.clip import Clip
    from models.detector import Detector, DetectorOptions
    from models.runtime import choose_device

    device = choose_device(settings.device, settings.half, settings.torch_threads)
    models = ModelSet(device=device)
    hint = f"(fill MODEL_DIR with: python scripts/fetch_models.py --dest {settings.model_dir})"
    for name, loader, entry in (
        ("detector", Detector.load, settings.yolo_weights),
        ("clip", Clip.load, settings.clip_model),
    ):
        start = time.perf_counter()
        try:
            setattr(models, name, loader(settings.model_dir.absolute(), entry, device))
        except FileNotFoundError as missing:
            models.problems[name] = f"{missing} {hint}"
            log.error("%s unavailable: %s", name, models.problems[name])
            continue
        log.info("loaded %s %s in %.2f s", name, entry, time.perf_counter() - start)

    start = time.perf_counter()
    blank = Image.new("RGB", (settings.warmup_imgsz, settings.warmup_imgsz), (128, 128, 128))
    if models.detector is not None:
        models.detector.predict([blank], DetectorOptions(imgsz=settings.warmup_imgsz))
    if models.clip is not None:
        from models.clip import MUG_PROMPTS, SCENE_LABELS

        models.clip.zero_shot(models.clip.embed_images([blank]), SCENE_LABELS)
        models.clip.embed_texts(MUG_PROMPTS)
    log.info(
        "models warmed up in %.2f s on %s (%s)",
        time.perf_counter() - start,
        device.name,
        device.dtype,
    )
    return models


@dataclass
class Stores:
    records: RecordStore
    objects: ObjectStore
    cache: ResultCache

    def health(self) -> dict[str, dict[str, Any]]:
        report = {}
        for name, store in (
            ("records", self.records),
            ("objects", self.objects),
            ("cache", self.cache),
        ):
            try:
                ok = bool(store.ping())
            except Exception:
                ok = False
            report[name] = {"backend": store.backend, "ok": ok}
        return report


def open_stores(settings: Settings) -> Stores:
    """The embedded defaults of SPEC 6 (production backends plug in here)."""
    data = settings.data_dir.absolute()
    return Stores(
        records=JsonRecordStore(data),
        objects=LocalObjectStore(data / "objects"),
        cache=LruResultCache(settings.result_cache_size),
    )
