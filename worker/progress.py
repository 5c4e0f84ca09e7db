"""A batch job's progress, reported as its images finish (SPEC 9: RunPod's ``progress_update``).

The worker hands each update to a sink (handler.py passes RunPod's); a status poll of a running
job shows the latest one as its ``output``. Stage changes are always sent, finished images at most
once per ``interval_s``: RunPod sends every update as its own request, so a 64-image batch would
otherwise make 64 of them in a second or two on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker.schemas import ProgressOut, ProgressStage

ProgressSink = Callable[[dict[str, Any]], None]


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
        self._send()

    def finished(self) -> None:
        """One more image is analysed and kept."""
        self.state = self.state.model_copy(update={"done": self.state.done + 1})
        if self._sent_at is None or self._clock() - self._sent_at >= self._interval_s:
            self._send()

    def _send(self) -> None:
        if self._sink is not None:
            self._sink(self.state.model_dump())
            self._sent_at = self._clock()
