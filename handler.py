"""RunPod glue: build the worker once at import, answer jobs with ``await handler(job)``, up to
``MAX_CONCURRENCY`` at once (SPEC 9)."""

from __future__ import annotations

import os
from typing import Any

import runpod

from worker.bootstrap import build_worker
from worker.concurrency import JobRunner

WORKER = build_worker()
RUNNER = JobRunner(WORKER)
# RunPod's job API, where progress_update posts; unset when run locally (nowhere to send it to)
REPORTS_PROGRESS = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    if not REPORTS_PROGRESS:
        return await RUNNER.run(job)
    return await RUNNER.run(job, lambda update: runpod.serverless.progress_update(job, update))


@runpod.serverless.register_fitness_check
def models_and_stores_ready() -> None:
    """Runs once on the platform before the first job; raising marks this worker unhealthy."""
    WORKER.check_fitness()


if __name__ == "__main__":
    runpod.serverless.start(
        {"handler": handler, "concurrency_modifier": RUNNER.concurrency_modifier}
    )
