"""RunPod glue: build the worker once at import, answer jobs with ``await handler(job)``, up to
``MAX_CONCURRENCY`` at once (SPEC 9).

runpod's import takes ~2 s here, most of it py-cpuinfo asking a child process for the CPU's name:
it runs in a thread while the worker imports and loads its models, and costs the start-up only
what is left of it then (``health``: ``startup_ms``).
"""

from __future__ import annotations

import time

IMPORT_START = time.perf_counter()

import importlib  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from typing import Any  # noqa: E402

_runpod_import = threading.Thread(target=importlib.import_module, args=("runpod",), daemon=True)
_runpod_import.start()

from worker.bootstrap import build_worker  # noqa: E402
from worker.concurrency import JobRunner  # noqa: E402

WORKER = build_worker(imports_ms=(time.perf_counter() - IMPORT_START) * 1000)
_waited = time.perf_counter()
_runpod_import.join()
WORKER.startup_ms["runpod import (left after the build)"] = round(
    (time.perf_counter() - _waited) * 1000, 1
)

import runpod  # noqa: E402

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
