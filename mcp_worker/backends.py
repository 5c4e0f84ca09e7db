"""Where the MCP server's tools run a job: the worker in this process, or a RunPod endpoint."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from contextlib import redirect_stdout
from typing import Any, Protocol

import anyio

log = logging.getLogger(__name__)

# what a tool is told as a job moves: (progress, total, message)
Progress = Callable[[float, float | None, str | None], Coroutine[Any, Any, None]]
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
MAX_THUMBNAIL_SOURCE_BYTES = 20 * 1024 * 1024


class JobFailed(Exception):
    """A job that ended in an error: its text is the worker's ``code: message``."""


class Backend(Protocol):
    """Runs one job input; raises JobFailed with the worker's ``code: message`` when it fails."""

    description: str

    async def call(self, payload: dict[str, Any], progress: Progress) -> dict[str, Any]: ...

    async def annotated_image(self, output: dict[str, Any]) -> bytes | None:
        """The annotated picture of an analysis, where this backend can read it."""
        ...


def _failed(output: dict[str, Any]) -> None:
    if isinstance(output.get("error"), str):
        raise JobFailed(output["error"])


class LocalBackend:
    """The worker built in this process (models loaded once, at start), its jobs run as the
    handler runs them: side by side up to ``MAX_CONCURRENCY``, their images batched together."""

    description = "local worker"

    def __init__(self) -> None:
        from worker.bootstrap import build_worker
        from worker.concurrency import JobRunner

        # the libraries print while they load; on stdio, stdout is the protocol's
        with redirect_stdout(sys.stderr):
            self.worker = build_worker()
        self.runner = JobRunner(self.worker)

    async def call(self, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
        job = {"id": f"mcp-{uuid.uuid4().hex[:12]}", "input": payload}
        loop = asyncio.get_running_loop()

        def report(update: dict[str, Any]) -> None:
            """A batch's progress, from the job's thread to the tool's client."""
            message = f"{update['stage']}: {update['done']} of {update['images']} images"
            asyncio.run_coroutine_threadsafe(
                progress(update["done"], update["images"], message), loop
            )

        await progress(0, None, "running in the local worker")
        output = await self.runner.run(job, report)
        _failed(output)
        return output

    async def annotated_image(self, output: dict[str, Any]) -> bytes | None:
        key = (output.get("artifacts") or {}).get("annotated_key")
        if not key:
            return None
        objects = self.worker.stores.objects
        try:
            return await anyio.to_thread.run_sync(
                lambda: objects.get(key, max_bytes=MAX_THUMBNAIL_SOURCE_BYTES)
            )
        except Exception:
            log.warning("could not read the annotated picture %s", key, exc_info=True)
            return None


class EndpointBackend:
    """Jobs on a RunPod endpoint through the runpod SDK: ``/run``, then ``/status`` polls (each
    reported as progress) until the job ends or ``timeout_s`` passes (then it is cancelled)."""

    def __init__(self, endpoint_id: str, timeout_s: float, poll_s: float = 0.5) -> None:
        import runpod

        from client.batch import endpoint_access

        api_key, base_url = endpoint_access()
        self.endpoint = runpod.Endpoint(endpoint_id, api_key=api_key)
        self.endpoint.rp_client.endpoint_url_base = base_url
        self.endpoint_id = endpoint_id
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.description = f"RunPod endpoint {endpoint_id}"

    async def call(self, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
        timeout_ms = int(self.timeout_s * 1000)
        request = {"input": payload, "policy": {"executionTimeout": timeout_ms, "ttl": timeout_ms}}
        try:
            job = await anyio.to_thread.run_sync(self.endpoint.run, request)
        except Exception as error:
            raise JobFailed(
                f"fetch_failed: could not submit the job ({type(error).__name__})"
            ) from None
        client = self.endpoint.rp_client
        deadline = time.monotonic() + self.timeout_s
        delay = self.poll_s
        polls = 0
        while True:
            try:
                state = await anyio.to_thread.run_sync(
                    client.get, f"{self.endpoint_id}/status/{job.job_id}"
                )
            except Exception as error:
                log.warning("status poll of %s failed: %s", job.job_id, type(error).__name__)
                state = {"status": "UNKNOWN"}
            status = str(state.get("status"))
            if status == "COMPLETED":
                output = state.get("output")
                if not isinstance(output, dict):
                    raise JobFailed(
                        "internal_error: the endpoint's job completed without an output"
                    )
                _failed(output)
                await progress(polls + 1, polls + 1, "completed")
                return output
            if status in FINAL_STATES:
                reason = state.get("error")
                raise JobFailed(
                    str(reason) if reason else f"internal_error: the job ended {status}"
                )
            polls += 1
            running = state.get("output")
            message = status.lower().replace("_", " ")
            if isinstance(running, dict) and "done" in running:
                message += f": {running.get('done')} of {running.get('images')} images"
            await progress(polls, None, message)
            if time.monotonic() + delay > deadline:
                await anyio.to_thread.run_sync(_cancel, job)
                raise JobFailed(
                    f"timeout: job {job.job_id} did not finish within {self.timeout_s:g} s "
                    "(cancelled); try again, or raise --timeout"
                )
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    async def annotated_image(self, output: dict[str, Any]) -> bytes | None:
        """The picture behind the result's presigned URL (R2), when it is an http(s) URL."""
        url = (output.get("artifacts") or {}).get("annotated_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return None

        def download() -> bytes:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return bytes(answer.read(MAX_THUMBNAIL_SOURCE_BYTES))

        try:
            return await anyio.to_thread.run_sync(download)
        except Exception:
            log.warning("could not download the annotated picture", exc_info=True)
            return None


def _cancel(job: Any) -> None:
    try:
        job.cancel()
    except Exception:
        log.warning("could not cancel job %s", job.job_id, exc_info=True)
