"""What the worker builds once at start: the models (loaded and warmed up) and the stores."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from pydantic import SecretStr

from models.clip import Clip
from models.detector import Detector, DetectorOptions
from models.locate import Located, ModelSearch
from models.runtime import Device
from models.thread import MODEL_THREAD
from storage.base import ObjectStore, RecordStore, ResultCache
from storage.embedded import JsonRecordStore, LocalObjectStore, LruResultCache
from worker.settings import Settings
from worker.timing import Stages

log = logging.getLogger(__name__)


@dataclass
class ModelSet:
    """The loaded models; a model that failed to load is ``None`` with the reason in ``problems``."""

    device: Device
    detector: Detector | None = None
    clip: Clip | None = None
    problems: dict[str, str] = field(default_factory=dict)
    searched: dict[str, list[str]] = field(default_factory=dict)  # where a missing model was sought

    def problem(self, name: str) -> str:
        return self.problems.get(name, f"the {name} model is not loaded")

    def fingerprint(self) -> dict[str, str | None]:
        """The models' checksums: part of every cache key, so new weights never hit old results."""
        return {
            "detector": None if self.detector is None else self.detector.info.sha256,
            "clip": None if self.clip is None else self.clip.info.sha256,
            "dtype": self.device.dtype,
        }


def load_models(settings: Settings, startup: Stages | None = None) -> ModelSet:
    """Load YOLO and CLIP (MODEL_DIR first, then the Hugging Face cache) and warm both up, on the
    model thread that will run them (models/thread); ``startup`` gets the time of each step."""
    return MODEL_THREAD.run(lambda: _load_models(settings, startup or Stages()))


def _load_models(settings: Settings, startup: Stages) -> ModelSet:
    from models.locate import locate_clip, locate_detector
    from models.runtime import choose_device

    device = choose_device(settings.device, settings.half, settings.torch_threads)
    models = ModelSet(device=device)
    model_dir = settings.model_dir.absolute()
    cache = None if settings.hf_hub_cache is None else settings.hf_hub_cache.absolute()
    searches = (
        (
            "detector",
            Detector.load,
            locate_detector,
            ModelSearch(model_dir, settings.yolo_weights, cache, settings.yolo_model_id),
        ),
        (
            "clip",
            Clip.load,
            locate_clip,
            ModelSearch(model_dir, settings.clip_model, cache, settings.clip_model_id),
        ),
    )
    for name, loader, locate, search in searches:
        with startup(f"load {name}"):
            _load_one(models, name, loader, locate, search, settings)

    with startup("warm-up"):
        blank = Image.new("RGB", (settings.warmup_imgsz, settings.warmup_imgsz), (128, 128, 128))
        if models.detector is not None:
            models.detector.predict([blank], DetectorOptions(imgsz=settings.warmup_imgsz))
        if models.clip is not None:
            from models.clip import MUG_PROMPTS, SCENE_LABELS

            models.clip.zero_shot(models.clip.embed_images([blank]), SCENE_LABELS)
            models.clip.embed_texts(MUG_PROMPTS)
    log.info(
        "models warmed up in %.2f s on %s (%s)",
        startup.ms()["warm-up"] / 1000,
        device.name,
        device.dtype,
    )
    return models


def _load_one(
    models: ModelSet,
    name: str,
    loader: Callable[[Located, Device], Any],
    locate: Callable[[ModelSearch], Located],
    search: ModelSearch,
    settings: Settings,
) -> None:
    """Find and load one model into ``models``; a failure is kept in ``problems``, not raised."""
    from models.locate import ModelNotFound

    start = time.perf_counter()
    try:
        found = locate(search)
    except ModelNotFound as missing:
        models.problems[name] = (
            f"{missing} (fill MODEL_DIR with: python -m scripts.fetch_models --dest "
            f"{settings.model_dir}, or attach {search.repo_id} to the endpoint as a cached model)"
        )
        models.searched[name] = missing.places
        log.error("%s unavailable: %s", name, models.problems[name])
        return
    try:
        setattr(models, name, loader(found, models.device))
    except Exception as error:  # a corrupt or incomplete model must not stop the worker
        models.problems[name] = (
            f"{name} at {found.path} ({found.source}) could not be loaded: "
            f"{type(error).__name__}: {str(error)[:300]}"
        )
        log.exception("%s unavailable", name)
        return
    log.info(
        "loaded %s from %s (%s) in %.2f s",
        name,
        found.path,
        found.source,
        time.perf_counter() - start,
    )


@dataclass
class Stores:
    records: RecordStore
    objects: ObjectStore
    cache: ResultCache

    def health(self) -> dict[str, dict[str, Any]]:
        """Each store's backend and whether it answers now (within its timeout)."""
        report: dict[str, dict[str, Any]] = {}
        for name, store in (
            ("records", self.records),
            ("objects", self.objects),
            ("cache", self.cache),
        ):
            try:
                report[name] = {"backend": store.backend, "ok": bool(store.ping())}
            except Exception as error:
                report[name] = {
                    "backend": store.backend,
                    "ok": False,
                    "error": type(error).__name__,
                }
        return report


def open_stores(settings: Settings) -> Stores:
    """Production backends for what is configured (SPEC 5), embedded defaults for the rest (SPEC 6).

    Nothing here waits on a network: clients connect lazily, so a store that is down at start
    shows in ``health`` and the fitness check rather than stopping the worker.
    """
    data = settings.data_dir.absolute()
    timeout = settings.store_timeout_s
    records: RecordStore = JsonRecordStore(data)
    objects: ObjectStore = LocalObjectStore(data / "objects")
    cache: ResultCache = LruResultCache(settings.result_cache_size)
    if settings.mongodb_uri is not None:
        from storage import mongo

        mongo_client = mongo.connect(settings.mongodb_uri.get_secret_value(), timeout)
        records = mongo.MongoRecordStore(mongo_client, settings.mongodb_db, settings.vector_index)
    if settings.r2_bucket is not None:
        from storage import s3

        s3_client = s3.connect(
            settings.r2_endpoint_url,
            _secret(settings.r2_access_key_id),
            _secret(settings.r2_secret_access_key),
            settings.r2_region,
            timeout,
        )
        objects = s3.S3ObjectStore(s3_client, settings.r2_bucket, settings.presign_ttl_s)
    if settings.redis_configured:
        from storage import redis_cache

        redis_client = redis_cache.connect(
            _secret(settings.redis_url),
            settings.redis_host,
            settings.redis_port,
            _secret(settings.redis_password),
            timeout,
        )
        cache = redis_cache.RedisResultCache(
            redis_client, settings.cache_ttl_s, settings.cache_max_entry_bytes
        )
    return Stores(records=records, objects=objects, cache=cache)


def prepare_stores(stores: Stores) -> None:
    """Start-up checks: every store answers (the R2 bucket exists), Mongo's indexes exist.

    A failure is logged and shown by ``health``, not fatal: the worker still answers, and its
    writes wait in the outbox until the store is back.
    """
    for name, state in stores.health().items():
        if not state["ok"]:
            log.warning("the %s store (%s) does not answer at start", name, state["backend"])
    ensure = getattr(stores.records, "ensure_indexes", None)
    if ensure is None:
        return
    try:
        ensure()
    except Exception:
        log.warning("could not create the MongoDB indexes now", exc_info=True)


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
