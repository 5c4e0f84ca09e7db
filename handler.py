"""RunPod glue: build the worker once at import, answer each job with ``handler(job)``."""

from __future__ import annotations

import os
from typing import Any

import runpod

from worker.bootstrap import build_worker

WORKER = build_worker()
# RunPod's job API, where progress_update posts; unset when run locally (nowhere to send it to)
REPORTS_PROGRESS = bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))


def handler(job: dict[str, Any]) -> dict[str, Any]:
    if not REPORTS_PROGRESS:
        return WORKER.handle(job)
    return WORKER.handle(job, lambda update: runpod.serverless.progress_update(job, update))


@runpod.serverless.register_fitness_check
def models_and_stores_ready() -> None:
    """Runs once on the platform before the first job; raising marks this worker unhealthy."""
    WORKER.check_fitness()


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
