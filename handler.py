"""RunPod glue: build the worker once at import, answer each job with ``handler(job)``."""

from __future__ import annotations

from typing import Any

import runpod

from worker.bootstrap import build_worker

WORKER = build_worker()


def handler(job: dict[str, Any]) -> dict[str, Any]:
    return WORKER.handle(job)


@runpod.serverless.register_fitness_check
def models_and_stores_ready() -> None:
    """Runs once on the platform before the first job; raising marks this worker unhealthy."""
    WORKER.check_fitness()


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
