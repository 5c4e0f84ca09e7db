"""Jobs side by side (SPEC 9): RunPod's event loop hands each job to a thread of a bounded pool.

The worker's code is blocking (decode, URL fetch, store calls, drawing): a job runs whole in one
thread of the pool, so none of that ever holds the event loop, and its model work goes to the one
model thread (worker/batcher) where it meets the other jobs'. The pool has ``MAX_CONCURRENCY``
threads, as many as RunPod hands jobs at once (its ``concurrency_modifier``).

A job RunPod stops (cancelled, timed out) raises ``CancelledError`` in its coroutine, which is
re-raised, as RunPod requires; its thread finishes the job's writes (an analysis half written is
worse than one not asked for: the record, images and outbox stay consistent).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from worker.actions import Worker
from worker.progress import ProgressSink

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.concurrency = worker.settings.max_concurrency
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="job")

    def concurrency_modifier(self, current: int) -> int:
        """RunPod asks this how many jobs to take at once; always an int (runpod-python#458)."""
        return self.concurrency

    async def run(
        self, job: dict[str, Any], progress: ProgressSink | None = None
    ) -> dict[str, Any]:
        """The job's output, computed in the pool; cancellation reaches the caller."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self.worker.handle, job, progress)
        except asyncio.CancelledError:
            log.info("job %s stopped by RunPod; its writes finish in the background", job.get("id"))
            raise
