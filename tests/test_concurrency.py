"""Jobs side by side (SPEC 9): merged into shared model calls, each answers as it would alone; the
async handler's contract with RunPod; writes under concurrency lose nothing and repeat nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from models.detector import DetectorOptions
from storage.embedded import JsonRecordStore
from tests.conftest import ASSETS, ROOT, encode_image
from worker.actions import Worker
from worker.concurrency import JobRunner

DESK = Image.open(ASSETS / "desk.jpg").convert("RGB")
RULES = [
    "Keep mugs at least 15 cm from laptops",
    "Mugs must be 3 cm from the table edge",
    "At most one mug on the desk",
]


def picture(name: str) -> str:
    """The desk photo as it is, mirrored (same size), smaller, and cropped (other sizes)."""
    variants = {
        "desk": DESK,
        "mirrored": ImageOps.mirror(DESK),
        "smaller": DESK.resize((DESK.width * 3 // 4, DESK.height * 3 // 4)),
        "cropped": DESK.crop((0, 0, DESK.width * 4 // 5, DESK.height)),
    }
    return encode_image(variants[name])


# Jobs of every shape: single images and batches, sizes mixed within a job and across jobs,
# and options that must never share a detector call (imgsz, conf, augment).
JOBS: dict[str, dict[str, Any]] = {
    "single": {"image": "desk"},
    "single-again": {"image": "mirrored"},
    "single-smaller": {"image": "smaller"},
    "batch-mixed": {"images": ["desk", "cropped", "smaller"]},
    "imgsz-320": {"image": "desk", "options": {"imgsz": 320}},
    "low-conf": {"image": "mirrored", "options": {"conf": 0.05}},
    "augmented": {"image": "desk", "options": {"augment": True}},
    "no-clip": {"images": ["mirrored", "desk"], "options": {"clip": False}},
}


def payload(spec: dict[str, Any]) -> dict[str, Any]:
    options = {"cache": False, "store": False, **spec.get("options", {})}
    body: dict[str, Any] = {"rules": RULES, "options": options}
    if "image" in spec:
        body["image"] = picture(spec["image"])
    else:
        body["images"] = [{"id": str(i), "image": picture(n)} for i, n in enumerate(spec["images"])]
    return body


def analyses(output: dict[str, Any]) -> list[dict[str, Any]]:
    assert "error" not in output, output
    return output.get("results", [output])


def assert_same_analysis(alone: dict[str, Any], merged: dict[str, Any]) -> None:
    """Same detections within 1 px, same mugs, verdicts and moves."""
    assert [d["class"] for d in merged["detections"]] == [d["class"] for d in alone["detections"]]
    for a, m in zip(alone["detections"], merged["detections"], strict=True):
        assert max(abs(x - y) for x, y in zip(a["box"], m["box"], strict=True)) <= 1.0
        assert m["confidence"] == pytest.approx(a["confidence"], abs=1e-3)
    assert [m["id"] for m in merged["mugs"]] == [m["id"] for m in alone["mugs"]]
    assert [(r["rule_id"], r["status"]) for r in merged["rules"]] == [
        (r["rule_id"], r["status"]) for r in alone["rules"]
    ]
    assert merged["feedback"]["recommendations"] == alone["feedback"]["recommendations"]


DETECTOR_OPTIONS = set(DetectorOptions.model_fields)


def detector_options(spec: dict[str, Any]) -> str:
    """The options that decide a detector call: jobs that share them share the call."""
    options = spec.get("options", {})
    return repr(sorted((k, v) for k, v in options.items() if k in DETECTOR_OPTIONS))


def run_together(app: Worker, jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every job at once, each from a thread of its own, released together."""
    start = threading.Barrier(len(jobs))

    def one(name: str) -> dict[str, Any]:
        body = payload(jobs[name])
        start.wait()
        return app.handle({"id": name, "input": body})

    with ThreadPoolExecutor(len(jobs)) as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


@pytest.mark.slow
def test_merged_jobs_answer_as_each_job_alone(make_worker) -> None:
    alone_app = make_worker()
    alone = {name: alone_app.handle({"id": name, "input": payload(s)}) for name, s in JOBS.items()}

    # a long wait: every job's images reach the model thread before it calls the detector
    merged_app = make_worker(batch_wait_ms=1000, batch_max_images=64)
    merged = run_together(merged_app, JOBS)

    for name in JOBS:
        for a, m in zip(analyses(alone[name]), analyses(merged[name]), strict=True):
            assert_same_analysis(a, m)
    distinct = {detector_options(spec) for spec in JOBS.values()}
    stats = merged_app.batcher.stats()
    # the jobs met: one detector call per distinct set of options, fewer than one per job
    assert stats.detector_calls == len(distinct) < len(JOBS)
    assert stats.detector_images == sum(len(analyses(o)) for o in alone.values())
    assert stats.clip_calls == 1  # every image and crop of the jobs with CLIP, in one call


@pytest.mark.slow
def test_a_job_alone_does_not_wait_for_company(make_worker) -> None:
    """With a wait longer than any job, a lone job still answers at once: nobody else is in flight."""
    app = make_worker(batch_wait_ms=1000)
    app.handle({"id": "warm", "input": payload(JOBS["single"])})
    started = time.perf_counter()
    analyses(app.handle({"id": "alone", "input": payload(JOBS["single"])}))
    assert time.perf_counter() - started < 1.0


def test_the_concurrency_modifier_always_answers_max_concurrency(make_worker) -> None:
    runner = JobRunner(make_worker(max_concurrency=6))
    assert [runner.concurrency_modifier(n) for n in (1, 6, 0)] == [6, 6, 6]


@pytest.mark.slow
def test_jobs_through_the_async_runner_overlap_and_a_stopped_one_still_writes(
    make_worker, desk_b64: str
) -> None:
    app = make_worker(max_concurrency=4)
    runner = JobRunner(app)
    body = {"image": desk_b64, "options": {"cache": False}}

    async def scenario() -> tuple[list[dict[str, Any]], bool]:
        outputs = await asyncio.gather(
            *(runner.run({"id": f"job-{n}", "input": body}) for n in range(4))
        )
        stopped = asyncio.ensure_future(runner.run({"id": "stopped", "input": body}))
        await asyncio.sleep(0.05)
        stopped.cancel()  # what RunPod's stop channel does to a job's task
        try:
            await stopped
        except asyncio.CancelledError:
            return list(outputs), True
        return list(outputs), False

    outputs, cancelled = asyncio.run(scenario())
    assert cancelled
    assert [o["analysis_id"] for o in outputs] == [f"job-{n}" for n in range(4)]
    for analysis_id in ["job-0", "job-1", "job-2", "job-3"]:
        assert app.stores.records.get_analysis(analysis_id) is not None
    # the stopped job's thread goes on to write its record (never half of one)
    deadline = time.monotonic() + 30
    while app.stores.records.get_analysis("stopped") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.stores.records.get_analysis("stopped") is not None


# A worker in a child process whose results store is down (a flag file) and logs every write it
# takes. Mode "run": 8 jobs at once through the async runner, 4 at a time; it prints each job as it
# returns and kills itself (SIGKILL) after the third, the others still in flight. Mode "restart":
# the store is back; the worker starts (replaying its outbox) and runs the jobs that never
# returned, as RunPod delivers them again.
KILL_CHILD = """
import asyncio, json, os, signal, sys
from pathlib import Path
from storage.embedded import JsonRecordStore, LocalObjectStore, LruResultCache
from worker.actions import Worker
from worker.concurrency import JobRunner
from worker.runtime import Stores, load_models
from worker.settings import Settings

root, mode, image = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
jobs = json.loads(sys.argv[4])

class Remote(JsonRecordStore):
    def put_analysis(self, record):
        if (root / "down").exists():
            raise ConnectionError("the results store is down")
        with open(root / "writes.log", "a") as log:
            log.write(record["analysis_id"] + "\\n")
        super().put_analysis(record)

settings = Settings(model_dir=sys.argv[5], data_dir=root / "data", warmup_imgsz=320,
                    max_concurrency=4)
stores = Stores(Remote(root / "remote"), LocalObjectStore(root / "objects"), LruResultCache(8))
worker = Worker(settings, load_models(settings), stores)
worker.persister.replay()
runner = JobRunner(worker)
returned = 0

async def one(job_id):
    global returned
    output = await runner.run({"id": job_id, "input": {"image": image}})
    assert "error" not in output, output
    print(json.dumps({"returned": job_id, "record": output["persisted"]["record"]}), flush=True)
    returned += 1
    if mode == "run" and returned == 3:
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    limit = asyncio.Semaphore(4)
    async def bounded(job_id):
        async with limit:
            await one(job_id)
    await asyncio.gather(*(bounded(j) for j in jobs))

asyncio.run(main())
"""


@pytest.mark.slow
def test_killed_mid_batch_and_restarted_no_job_is_lost_or_written_twice(
    tmp_path: Path, demo_model_dir: Path, desk_b64: str
) -> None:
    jobs = [f"job-{n}" for n in range(8)]

    def child(mode: str, ids: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                KILL_CHILD,
                str(tmp_path),
                mode,
                desk_b64,
                json.dumps(ids),
                str(demo_model_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    (tmp_path / "down").touch()
    killed = child("run", jobs)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    returned = [json.loads(line) for line in killed.stdout.splitlines() if line.startswith("{")]
    assert len(returned) == 3
    assert all(r["record"] is False for r in returned)  # in the outbox, not in the store

    (tmp_path / "down").unlink()
    again = [j for j in jobs if j not in {r["returned"] for r in returned}]
    restarted = child("restart", again)
    assert restarted.returncode == 0, restarted.stderr[-2000:]

    writes = (tmp_path / "writes.log").read_text().split()
    remote = JsonRecordStore(tmp_path / "remote")
    assert all(remote.get_analysis(j) is not None for j in jobs)  # none lost
    # a job that returned is written once, from the outbox; one caught in flight by the kill may
    # have reached the outbox too and is written again when RunPod delivers it again (an upsert
    # by its id: still one record)
    assert [writes.count(r["returned"]) for r in returned] == [1, 1, 1]
    assert all(1 <= writes.count(j) <= 2 for j in again)
