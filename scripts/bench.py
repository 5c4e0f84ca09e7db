"""Time the worker on this machine: per-image latency by stage, for single images and batches.

    MODEL_DIR=volume/models python -m scripts.bench [--sizes 1,8] [--repeat 5] [--imgsz 640]
        [--augment] [--json]

Builds the worker as the handler does (models loaded and warmed up), then runs ``analyze`` jobs on
the repository's desk photo with the cache and the stores off, so every job does the full work.
Prints the median per-image milliseconds of each stage and the images per second.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time analyze jobs on this machine.")
    parser.add_argument("--sizes", default="1,8", help="batch sizes to time (images per job)")
    parser.add_argument("--repeat", type=int, default=5, help="timed jobs per batch size")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size")
    parser.add_argument(
        "--augment", action="store_true", help="test-time augmentation (options.augment)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    # the libraries print to stdout; the report alone goes there (so --json is parseable)
    with contextlib.redirect_stdout(sys.stderr):
        report = measure(args)
    if args.json:
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
