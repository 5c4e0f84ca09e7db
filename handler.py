"""RunPod glue: build the worker once at import, answer each job with ``handler(job)``."""

from __future__ import annotations

from typing import Any

from worker.bootstrap import build_worker

WORKER = build_worker()


def handler(job: dict[str, Any]) -> dict[str, Any]:
    return WORKER.handle(job)


if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
