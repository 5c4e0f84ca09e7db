"""Time the worker on this machine: per-image latency by stage, for single images and batches;
and, with ``--concurrency N``, jobs side by side (SPEC 9).

    MODEL_DIR=volume/models python -m scripts.bench [--sizes 1,8] [--repeat 5] [--imgsz 640]
        [--augment] [--json]
    MODEL_DIR=volume/models python -m scripts.bench --concurrency 16 --io-latency-ms 100

Builds the worker as the handler does (models loaded and warmed up), then runs ``analyze`` jobs on
the repository's desk photo with the cache and the stores off, so every job does the full work.
Prints the median per-image milliseconds of each stage and the images per second.

``--concurrency N`` times, in one run, as ratios: N single-image jobs one at a time against the
same N at once (RunPod's async handler path, ``MAX_CONCURRENCY`` N), N at once against one job of
the N images, a warm job against the bare model calls on the same image, and a cache hit.
``--io-latency-ms MS`` gives every job MS of I/O: its image comes by URL from a server on
loopback that answers after MS/2, and it stores its original and annotated image in an object
store whose every write takes MS/4 (the record goes to the embedded store).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.concurrency import JobRunner

ROOT = Path(__file__).resolve().parents[1]

STAGES = ("decode", "detect", "clip", "analyze", "rules", "persist")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Build the worker, then time ``args.repeat`` jobs of each batch size after one warm job."""
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="mugpos-bench-"))
    from worker.bootstrap import build_worker

    started = time.perf_counter()
    worker = build_worker()
    startup_s = time.perf_counter() - started
    image = base64.b64encode((ROOT / "tests" / "assets" / "desk.jpg").read_bytes()).decode()
    options = {"imgsz": args.imgsz, "augment": args.augment, "cache": False, "store": False}
    batches: dict[str, dict[str, float]] = {}
    report: dict[str, Any] = {
        "device": worker.models.device.name,
        "dtype": worker.models.device.dtype,
        "detector": worker.models.detector.info.name if worker.models.detector else None,
        "clip": worker.models.clip.info.name if worker.models.clip else None,
        "imgsz": args.imgsz,
        "augment": args.augment,
        "startup_s": round(startup_s, 2),
        "batches": batches,
    }
    for size in (int(s) for s in args.sizes.split(",")):
        payload = {
            "images": [{"id": str(i), "image": image} for i in range(size)],
            "options": options,
        }
        worker.handle({"id": "warm", "input": payload})
        walls: list[float] = []
        stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for attempt in range(args.repeat):
            start = time.perf_counter()
            output = worker.handle({"id": f"bench-{size}-{attempt}", "input": payload})
            walls.append((time.perf_counter() - start) * 1000 / size)
            if "error" in output:
                raise SystemExit(output["error"])
            for stage in STAGES:
                stages[stage].append(output["summary"]["timings_ms"][stage] / size)
        batches[str(size)] = {
            "ms_per_image": round(statistics.median(walls), 1),
            "images_per_s": round(1000 / statistics.median(walls), 1),
            **{f"{stage}_ms": round(statistics.median(v), 1) for stage, v in stages.items()},
        }
    return report


class _SlowObjects:
    """An object store whose every write takes ``delay_s`` (a remote R2 as a job sees it)."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.backend = f"{inner.backend} + {delay_s * 1000:.0f} ms per write"

    def put(self, key: str, data: bytes, content_type: str) -> None:
        time.sleep(self.delay_s)
        self.inner.put(key, data, content_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def _slow_image_server(images: list[bytes], delay_s: float) -> Iterator[str]:
    """Serves ``/<n>.jpg`` on loopback, each answer after ``delay_s``; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            body = images[int(self.path.strip("/").split(".")[0])]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _desk_variants(count: int) -> list[bytes]:
    """The desk photo ``count`` times, each with one pixel changed: distinct originals to store."""
    from PIL import Image

    desk = Image.open(ROOT / "tests" / "assets" / "desk.jpg").convert("RGB")
    variants = []
    for n in range(count):
        image = desk.copy()
        image.putpixel((n % image.width, 0), (n % 256, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95)
        variants.append(buffer.getvalue())
    return variants


def measure_concurrency(args: argparse.Namespace) -> dict[str, Any]:
    """The ratios of SPEC 9, all in this one run (see the module's docstring)."""
    data_dir = Path(os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="mugpos-bench-")))
    from PIL import Image

    from models.clip import MUG_PROMPTS, SCENE_LABELS
    from models.detector import DetectorOptions
    from models.thread import MODEL_THREAD
    from storage.embedded import LocalObjectStore
    from worker.bootstrap import build_worker
    from worker.concurrency import JobRunner
    from worker.settings import load_settings

    count = args.concurrency
    io_s = args.io_latency_ms / 1000.0
    settings = load_settings(max_concurrency=count, allow_private_urls=True)
    worker = build_worker(settings)
    if io_s:
        worker.stores.objects = _SlowObjects(LocalObjectStore(data_dir / "objects"), io_s / 4)
    runner = JobRunner(worker)
    images = _desk_variants(count * 2 + 1)  # one round one at a time, one at once, a warm-up
    options = {"imgsz": args.imgsz, "cache": False, "store": bool(io_s)}
    round_no = iter(range(2))

    def job(url: str, n: int) -> dict[str, Any]:
        source = {"image_url": f"{url}/{n}.jpg"} if io_s else {"image": _b64(images[n])}
        return {"id": f"bench-{n}", "input": {**source, "options": options}}

    latencies_ms: list[float] = []

    def timed(url: str, concurrent: bool) -> float:
        first = next(round_no) * count
        jobs = [job(url, first + n) for n in range(count)]
        start = time.perf_counter()
        if concurrent:
            latencies_ms.extend(_all_at_once(runner, jobs))
        else:
            _check([worker.handle(j) for j in jobs])
        return time.perf_counter() - start

    server = _slow_image_server(images, io_s / 2) if io_s else contextlib.nullcontext("")
    with server as url:
        worker.handle(job(url, len(images) - 1))  # warm: the first job's one-off costs
        sequential_s = timed(url, concurrent=False)
        busy_before = worker.batcher.stats().busy_s
        concurrent_s = timed(url, concurrent=True)
        busy_concurrent = worker.batcher.stats().busy_s - busy_before
    batch_items = [{"id": str(n), "image": _b64(images[n])} for n in range(count)]
    batch_options = {**options, "store": False}
    batch = {"images": batch_items, "options": batch_options}
    start = time.perf_counter()
    _check([worker.handle({"id": "bench-batch", "input": batch})])
    batch_s = time.perf_counter() - start
    singles = [
        {"id": f"s{n}", "input": {"image": batch_items[n]["image"], "options": batch_options}}
        for n in range(count)
    ]
    start = time.perf_counter()
    _all_at_once(runner, singles)
    singles_s = time.perf_counter() - start

    # a warm job against the bare model calls it makes, on the same image and weights
    one = {
        "image": _b64(images[0]),
        "options": {"imgsz": args.imgsz, "cache": False, "store": False},
    }
    picture = Image.open(io.BytesIO(images[0])).convert("RGB")
    detector, clip = worker.models.detector, worker.models.clip
    assert detector is not None and clip is not None

    def bare_models() -> float:
        """The model calls a job makes, timed on the model thread (where the models run)."""
        start = time.perf_counter()
        found = detector.predict([picture], DetectorOptions(imgsz=args.imgsz))
        crops = [
            picture.crop((d.box.x1, d.box.y1, d.box.x2, d.box.y2))
            for d in found[0]
            if d.class_name in settings.mug_classes
        ]
        embeddings = clip.embed_images([picture, *crops])
        clip.zero_shot(embeddings[:1], SCENE_LABELS)
        if crops:
            clip.zero_shot(embeddings[1:], MUG_PROMPTS)
        return (time.perf_counter() - start) * 1000

    job_ms, bare_ms = [], []
    for attempt in range(args.repeat):
        start = time.perf_counter()
        _check([worker.handle({"id": f"warm-{attempt}", "input": one})])
        job_ms.append((time.perf_counter() - start) * 1000)
        bare_ms.append(MODEL_THREAD.run(bare_models))
    cached = {**one, "options": {"imgsz": args.imgsz, "cache": True, "store": False}}
    worker.handle({"id": "fill-cache", "input": cached})
    hit_ms = []
    for attempt in range(args.repeat):
        start = time.perf_counter()
        output = worker.handle({"id": f"hit-{attempt}", "input": cached})
        hit_ms.append((time.perf_counter() - start) * 1000)
        assert output["persisted"]["cache"] == "hit", output["persisted"]
    stats = worker.batcher.stats()
    return {
        "device": worker.models.device.name,
        "dtype": worker.models.device.dtype,
        "imgsz": args.imgsz,
        "jobs": count,
        "io_latency_ms": args.io_latency_ms,
        "sequential_s": round(sequential_s, 3),
        "concurrent_s": round(concurrent_s, 3),
        "concurrent_speedup": round(sequential_s / concurrent_s, 2),
        "concurrent_p50_ms": round(statistics.median(latencies_ms), 1),
        "concurrent_p95_ms": round(statistics.quantiles(latencies_ms, n=20)[-1], 1),
        # the share of the concurrent run the model thread spent in model calls (on a GPU: a
        # bound on how busy the device was kept)
        "model_thread_busy_pct": round(100 * busy_concurrent / concurrent_s, 1),
        "one_batch_s": round(batch_s, 3),
        "singles_at_once_s": round(singles_s, 3),
        "singles_vs_batch": round(singles_s / batch_s, 2),
        "warm_job_ms": round(statistics.median(job_ms), 1),
        "bare_models_ms": round(statistics.median(bare_ms), 1),
        "job_vs_bare": round(statistics.median(job_ms) / statistics.median(bare_ms), 2),
        "cache_hit_ms": round(statistics.median(hit_ms), 2),
        "detector_calls": stats.detector_calls,
        "detector_images": stats.detector_images,
        "model_thread_busy_s": stats.busy_s,
    }


def _all_at_once(runner: JobRunner, jobs: list[dict[str, Any]]) -> list[float]:
    """Run the jobs side by side through RunPod's async path; each one's latency in ms."""
    start = time.perf_counter()
    latencies: list[float] = []

    async def one(job: dict[str, Any]) -> dict[str, Any]:
        output = await runner.run(job)
        latencies.append((time.perf_counter() - start) * 1000)
        return output

    async def together() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(one(job) for job in jobs)))

    _check(asyncio.run(together()))
    return latencies


def _check(outputs: list[dict[str, Any]]) -> None:
    for output in outputs:
        if "error" in output:
            raise SystemExit(output["error"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time analyze jobs on this machine.")
    parser.add_argument("--sizes", default="1,8", help="batch sizes to time (images per job)")
    parser.add_argument("--repeat", type=int, default=5, help="timed jobs per batch size")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size")
    parser.add_argument(
        "--augment", action="store_true", help="test-time augmentation (options.augment)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="time N single-image jobs side by side"
    )
    parser.add_argument(
        "--io-latency-ms", type=float, default=0.0, help="I/O per job (with --concurrency)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    # the libraries print to stdout; the report alone goes there (so --json is parseable)
    with contextlib.redirect_stdout(sys.stderr):
        report = measure_concurrency(args) if args.concurrency else measure(args)
    if args.json or args.concurrency:
        print(json.dumps(report))
        return 0
    print(
        f"{report['device']} {report['dtype']}, detector {report['detector']}, imgsz "
        f"{args.imgsz}, test-time augmentation {'on' if args.augment else 'off'}"
    )
    print(f"start-up (load + warm-up): {report['startup_s']} s")
    for size, figures in report["batches"].items():
        print(f"batch {size}: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
