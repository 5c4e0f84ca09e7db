"""One function per action, dispatched by name; every failure becomes ``{"error": "code: message"}``."""

from __future__ import annotations

import json
import logging
import platform
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rules.model import canonical
from storage.outbox import Outbox
from worker.batcher import ModelBatcher
from worker.cameras import CameraBook
from worker.errors import JobError, describe_validation_error
from worker.evaluate import Evaluator
from worker.history import History
from worker.intake import read_image
from worker.persist import JobWrites, Persister
from worker.pipeline import Analyzer
from worker.progress import ProgressSink
from worker.rulebook import RuleBook, parse_items
from worker.runtime import ModelSet, Stores
from worker.schemas import (
    AnalyzeInput,
    CameraNameInput,
    EvaluateInput,
    FindSimilarInput,
    HealthInput,
    ListAnalysesInput,
    ListCamerasInput,
    ListRuleSetsInput,
    ParseRulesInput,
    PutCameraInput,
    PutRuleSetInput,
    RuleSetNameInput,
    StatsInput,
)
from worker.settings import Settings
from worker.webhooks import WebhookDelivery

log = logging.getLogger(__name__)

InputModel = TypeVar("InputModel", bound=BaseModel)
VERSIONED_PACKAGES = ("torch", "ultralytics", "transformers", "runpod", "pydantic")


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Job:
    """What an action knows of the job it answers besides its input."""

    id: str
    writes: JobWrites
    progress: ProgressSink | None = None


class Worker:
    """The whole worker behind one call: ``handle(job) -> dict``. Built once per process; jobs
    may call it from several threads at once (SPEC 9), their model work meeting in the batcher."""

    def __init__(self, settings: Settings, models: ModelSet, stores: Stores) -> None:
        self.settings = settings
        self.models = models
        self.stores = stores
        self.outbox = Outbox(settings.data_dir.absolute() / "outbox")
        self.persister = Persister(stores, self.outbox)
        self.rulebook = RuleBook(stores.records)
        self.cameras = CameraBook(stores.records)
        self.batcher = ModelBatcher(models, settings.batch_max_images, settings.batch_wait_ms)
        self.startup_ms: dict[str, float] = {}  # what each start-up step took (build_worker)
        self.webhooks = WebhookDelivery.from_settings(settings)
        self.analyzer = Analyzer(
            settings, models, stores, self.batcher, self.rulebook, self.cameras, self.webhooks
        )
        self.evaluator = Evaluator(settings, self.rulebook, self.cameras)
        self.history = History(stores.records, stores.objects)
        self.actions: dict[str, Callable[[dict[str, Any], Job], dict[str, Any]]] = {
            "analyze": self.analyze,
            "evaluate": self.evaluate,
            "parse_rules": self.parse_rules,
            "put_rule_set": self.put_rule_set,
            "get_rule_set": self.get_rule_set,
            "list_rule_sets": self.list_rule_sets,
            "delete_rule_set": self.delete_rule_set,
            "put_camera": self.put_camera,
            "get_camera": self.get_camera,
            "list_cameras": self.list_cameras,
            "delete_camera": self.delete_camera,
            "find_similar": self.find_similar,
            "stats": self.stats,
            "list_analyses": self.list_analyses,
            "health": self.health,
        }

    def handle(self, job: dict[str, Any], progress: ProgressSink | None = None) -> dict[str, Any]:
        """Answer one RunPod job; ``progress`` receives a batch's progress as images finish."""
        job_id = str(job.get("id") or uuid.uuid4())
        self.batcher.job_started()
        try:
            payload = job.get("input")
            if not isinstance(payload, dict):
                raise JobError("invalid_input", "input: expected a JSON object")
            writes = self.persister.begin_job()
            action = payload.get("action", "analyze")
            handler = self.actions.get(action) if isinstance(action, str) else None
            if handler is None:
                raise JobError("invalid_input", self._unknown_action(action))
            output = handler(payload, Job(job_id, writes, progress))
            json.dumps(output, allow_nan=False)
            return output
        except JobError as error:
            log.info("job %s failed: %s", job_id, error)
            return error.as_output()
        except Exception:
            log.exception("job %s failed with an internal error", job_id)
            return JobError(
                "internal_error", f"the worker failed on job {job_id}; see the worker log"
            ).as_output()
        finally:
            self.batcher.job_finished()

    def _unknown_action(self, action: object) -> str:
        known = ", ".join(self.actions)
        return f"action: unknown action {str(action)[:40]!r}; expected one of {known}"

    @staticmethod
    def _parse(model: type[InputModel], payload: dict[str, Any]) -> InputModel:
        try:
            return model.model_validate(payload)
        except ValidationError as error:
            raise JobError("invalid_input", describe_validation_error(error)) from None

    def analyze(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.analyzer.run(
            self._parse(AnalyzeInput, payload), job.id, job.writes, job.progress
        )

    def evaluate(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.evaluator.run(self._parse(EvaluateInput, payload))

    def parse_rules(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        request = self._parse(ParseRulesInput, payload)
        return {"rules": canonical(parse_items(request.rules))}

    def put_rule_set(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        request = self._parse(PutRuleSetInput, payload)
        return self.rulebook.put(request.name, request.description, request.rules)

    def get_rule_set(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.rulebook.get(self._parse(RuleSetNameInput, payload).name)

    def list_rule_sets(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        self._parse(ListRuleSetsInput, payload)
        return {"rule_sets": self.rulebook.list()}

    def delete_rule_set(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.rulebook.delete(self._parse(RuleSetNameInput, payload).name)

    def put_camera(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        request = self._parse(PutCameraInput, payload)
        return self.cameras.put(
            request.name, request.description, request.calibration, request.surface
        )

    def get_camera(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.cameras.get(self._parse(CameraNameInput, payload).name)

    def list_cameras(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        self._parse(ListCamerasInput, payload)
        return {"cameras": self.cameras.list()}

    def delete_camera(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        return self.cameras.delete(self._parse(CameraNameInput, payload).name)

    def find_similar(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        """Analyses nearest by CLIP image embedding to an image or to a stored analysis."""
        request = self._parse(FindSimilarInput, payload)
        if request.analysis_id is not None:
            record = self.stores.records.get_analysis(request.analysis_id)
            if record is None or not record.get("embedding"):
                raise JobError(
                    "not_found",
                    f"analysis_id: no analysis {request.analysis_id[:80]!r} with an embedding",
                )
            embedding, query = record["embedding"], {"analysis_id": request.analysis_id}
        else:
            if self.models.clip is None:
                raise JobError("model_unavailable", self.models.problem("clip"))
            image = read_image(
                request,
                field_prefix="",
                limits=self.analyzer.limits,
                objects=self.stores.objects,
                fetcher=self.analyzer.fetcher,
            )
            embedding = [float(v) for v in self.batcher.embed_images([image.image])[0]]
            query = {"sha256": image.sha256}
        results = self.stores.records.find_similar(
            embedding, request.limit, self.settings.similar_scan_limit, exclude=request.analysis_id
        )
        return {"query": query, "results": results}

    def stats(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        """Compliance counts of the stored analyses, grouped by rule, day or a metadata key."""
        return self.history.stats(self._parse(StatsInput, payload)).model_dump(mode="json")

    def list_analyses(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        """The stored analyses' summaries, newest first, a page at a time."""
        request = self._parse(ListAnalysesInput, payload)
        return self.history.list(request).model_dump(mode="json")

    def check_fitness(self) -> None:
        """RunPod's fitness check, before the first job: without its models a worker is useless,
        so that fails it (RunPod marks it unhealthy). A store that does not answer is logged but
        does not: the worker still analyses, and its writes wait in the outbox (SPEC 5)."""
        for name, state in self.stores.health().items():
            if not state["ok"]:
                log.warning("fitness: the %s store (%s) does not answer", name, state["backend"])
        missing = [
            self.models.problem(n) for n in ("detector", "clip") if getattr(self.models, n) is None
        ]
        if missing:
            raise RuntimeError("worker is not fit: " + "; ".join(missing))

    def health(self, payload: dict[str, Any], job: Job) -> dict[str, Any]:
        self._parse(HealthInput, payload)
        models: dict[str, Any] = {
            "device": self.models.device.name,
            "dtype": self.models.device.dtype,
        }
        for name in ("detector", "clip"):
            model = getattr(self.models, name)
            models[name] = (
                {"loaded": False, "problem": self.models.problem(name)}
                | (
                    {"looked_in": self.models.searched[name]}
                    if name in self.models.searched
                    else {}
                )
                if model is None
                else {
                    "loaded": True,
                    "name": model.info.name,
                    "sha256": model.info.sha256,
                    "demo": model.info.demo,
                    "source": model.info.source,
                    "revision": model.info.revision,
                }
            )
        stores = self.stores.health()
        models_loaded = self.models.detector is not None and self.models.clip is not None
        ready = models_loaded and all(s["ok"] for s in stores.values())
        return {
            "status": "ok" if ready else "degraded",
            "models": models,
            "stores": stores,
            "outbox": {"pending": self.outbox.pending()},
            "webhooks": None if self.webhooks is None else self.webhooks.health(),
            "startup_ms": self.startup_ms,
            "concurrency": {
                "max_concurrency": self.settings.max_concurrency,
                "batch_max_images": self.settings.batch_max_images,
                "batch_wait_ms": self.settings.batch_wait_ms,
                **asdict(self.batcher.stats()),
            },
            "versions": {
                "python": platform.python_version(),
                **{name: _package_version(name) for name in VERSIONED_PACKAGES},
            },
        }
