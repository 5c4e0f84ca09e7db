"""A batch job's progress, reported as its images finish (SPEC 9: RunPod's ``progress_update``).

The worker hands each update to a sink (handler.py passes RunPod's); a status poll of a running
job shows the latest one as its ``output``. RunPod sends every update as a request of its own from
a thread of its own, so updates close together may arrive out of order (and a late one after the
job's result): at most one is sent per ``interval_s``, the state as it is then, and none once the
last image is done (the result follows at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker.schemas import ProgressOut, ProgressStage

ProgressSink = Callable[[dict[str, Any]], None]
STAGES: tuple[ProgressStage, ...] = ("decode", "detect", "clip", "analyze")


class BatchProgress:
    def __init__(
        self,
        sink: ProgressSink | None,
        images: int,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._interval_s = interval_s
        self._sent_at: float | None = None
        self.state = ProgressOut(stage="decode", images=images, done=0, failed=0)

    def stage(self, stage: ProgressStage, *, failed: int | None = None) -> None:
        """A new stage began (``failed``: images already out of the batch, e.g. undecodable)."""
        update = {"stage": stage} | ({} if failed is None else {"failed": failed, "done": failed})
        self.state = self.state.model_copy(update=update)
        self._report()

    def finished(self) -> None:
        """One more image is analysed and kept."""
        self.state = self.state.model_copy(update={"done": self.state.done + 1})
        self._report()

    def _report(self) -> None:
        if self._sink is None or self.state.done >= self.state.images:
            return
        now = self._clock()
        if self._sent_at is None or now - self._sent_at >= self._interval_s:
            self._sent_at = now
            self._sink(self.state.model_dump())
