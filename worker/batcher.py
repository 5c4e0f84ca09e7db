"""One model thread for every job in flight: their images gathered into one detector call and one
CLIP call (SPEC 9).

Jobs run side by side in threads of their own; each hands its model work here and waits for the
answer. The model thread takes the first request, waits up to ``wait_ms`` for the other jobs in
flight to send theirs (never when the job is alone), and answers them all with as few model calls
as give each image exactly what it would get alone:

- detector: one call per set of options (``imgsz``/``conf``/``augment``... never mixed); inside
  it the detector letterboxes each image as ultralytics would alone and runs images whose inputs
  have the same shape together (models/detector), so no image's answer depends on its company.
- CLIP image embeddings: one call for every image and crop (each is resized alone).
- everything else (text embeddings, zero-shot scores) runs on the same thread in order, so the
  models are only ever used from one thread.

The thread is the process's one model thread (models/thread): the models were loaded and warmed
up on it, and run fastest there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from models.detector import DetectorOptions
from models.thread import MODEL_THREAD, ModelThread
from positioning.scene import Detection
from worker.runtime import ModelSet

Result = TypeVar("Result")


@dataclass(eq=False)
class _Detect:
    batcher: ModelBatcher
    images: Sequence[Image.Image]
    options: DetectorOptions
    answer: Future[list[list[Detection]]] = field(default_factory=Future)

    def do(self, thread: ModelThread) -> None:
        self.batcher._serve(self, thread)


@dataclass(eq=False)
class _Embed:
    batcher: ModelBatcher
    images: Sequence[Image.Image]
    answer: Future[np.ndarray] = field(default_factory=Future)

    def do(self, thread: ModelThread) -> None:
        self.batcher._serve(self, thread)


_Request = _Detect | _Embed


@dataclass(frozen=True)
class BatchStats:
    """What the model thread did: calls made and images they held (for health and benchmarks)."""

    detector_calls: int
    detector_images: int
    clip_calls: int
    clip_images: int
    busy_s: float


class ModelBatcher:
    def __init__(self, models: ModelSet, max_images: int, wait_ms: float) -> None:
        self.models = models
        self.max_images = max_images
        self.wait_s = wait_ms / 1000.0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._detector_calls = self._detector_images = self._clip_calls = self._clip_images = 0
        self._busy_s = 0.0

    # ------------------------------------------------------------------ the jobs' side

    def job_started(self) -> None:
        with self._in_flight_lock:
            self._in_flight += 1

    def job_finished(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def detect(
        self, images: Sequence[Image.Image], options: DetectorOptions
    ) -> list[list[Detection]]:
        """The detections of each image, as one detector call on these images alone gives them."""
        return self._ask(_Detect(self, images, options))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """CLIP's unit-length embedding of each image."""
        return self._ask(_Embed(self, images))

    @staticmethod
    def call(function: Callable[[], Result]) -> Result:
        """Any other use of the models, on the model thread, in turn."""
        return MODEL_THREAD.run(function)

    def stats(self) -> BatchStats:
        return BatchStats(
            self._detector_calls,
            self._detector_images,
            self._clip_calls,
            self._clip_images,
            round(self._busy_s, 3),
        )

    def _ask(self, request: _Request) -> Any:
        if MODEL_THREAD.is_current():  # a model call made from a model call
            self._answer([request])
        else:
            MODEL_THREAD.submit(request)
        return request.answer.result()

    # ------------------------------------------------------------------ the model thread

    def _serve(self, first: _Request, thread: ModelThread) -> None:
        gathered = self._gather(first, thread)
        started = time.perf_counter()
        self._answer(gathered)
        self._busy_s += time.perf_counter() - started

    def _gather(self, first: _Request, thread: ModelThread) -> list[_Request]:
        """The first request and this batcher's that come within the wait, while other jobs are
        in flight and the images fit in one batch (other work goes back in line, in order)."""
        gathered = [first]
        images = len(first.images)
        deadline = time.perf_counter() + self.wait_s
        while images < self.max_images:
            work = thread.take(None)
            if work is None:
                with self._in_flight_lock:
                    waiting_for_company = self._in_flight > len(gathered)
                left = deadline - time.perf_counter()
                if not waiting_for_company or left <= 0:
                    break
                work = thread.take(left)
                if work is None:
                    break
            if isinstance(work, _Detect | _Embed) and work.batcher is self:
                gathered.append(work)
                images += len(work.images)
            else:
                thread.put_back(work)
        return gathered

    def _answer(self, requests: list[_Request]) -> None:
        self._run_detector([r for r in requests if isinstance(r, _Detect)])
        self._run_clip([r for r in requests if isinstance(r, _Embed)])

    def _run_detector(self, requests: list[_Detect]) -> None:
        """One detector call per set of options, the answers handed back per request."""
        groups: dict[DetectorOptions, list[tuple[int, int]]] = {}
        for r, request in enumerate(requests):
            for i in range(len(request.images)):
                groups.setdefault(request.options, []).append((r, i))
        found: dict[tuple[int, int], list[Detection]] = {}
        failed: dict[int, BaseException] = {}
        detector = self.models.detector
        for options, members in groups.items():
            try:
                if detector is None:
                    raise RuntimeError(self.models.problem("detector"))
                images = [requests[r].images[i] for r, i in members]
                answers = detector.predict(images, options)
                self._detector_calls += 1
                self._detector_images += len(images)
            except BaseException as error:  # handed to the jobs whose images these were
                for r, _ in members:
                    failed[r] = error
                continue
            found.update(zip(members, answers, strict=True))
        for r, request in enumerate(requests):
            if r in failed:
                request.answer.set_exception(failed[r])
            else:
                request.answer.set_result([found[(r, i)] for i in range(len(request.images))])

    def _run_clip(self, requests: list[_Embed]) -> None:
        if not requests:
            return
        clip = self.models.clip
        pictures = [image for request in requests for image in request.images]
        try:
            if clip is None:
                raise RuntimeError(self.models.problem("clip"))
            embeddings = clip.embed_images(pictures)
            self._clip_calls += 1
            self._clip_images += len(pictures)
        except BaseException as error:
            for request in requests:
                request.answer.set_exception(error)
            return
        start = 0
        for request in requests:
            request.answer.set_result(embeddings[start : start + len(request.images)])
            start += len(request.images)
