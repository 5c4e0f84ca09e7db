"""The worst case of each input class at the worker's bounds: time and peak memory per job.

    MODEL_DIR=volume/models python -m scripts.bench_worst [--cases big_image,crowd_299] [--json]

Each case runs in a fresh interpreter (the worker built as the handler builds it, then one job),
so its peak resident memory is its own: ``peak_mb`` is the process' high-water mark after the job,
``added_mb`` what the job added to the worker's after start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each case is the source of a function ``job()`` returning the job input; it runs in the child.
CASES = {
    "big_image": "a 7071x7071 JPEG (MAX_IMAGE_PIXELS, 50 MP), detector at imgsz 2048",
    "thin_image": "a 20000x1000 JPEG (the 20:1 limit), detector at imgsz 2048",
    "batch_64": "64 desk photos in one job (MAX_BATCH)",
    "rules_100": "100 rule sentences (the rule limit) on the desk photo",
    "crowd_299": "evaluate: 299 mugs with a spacing and an edge rule (placement budget)",
    "cluster_299": "evaluate: 299 mugs packed 3 px apart, 100 spacing rules (every bound at once)",
    "metadata_max": "metadata near its bounds: 32 levels deep, 4,000 keys (57 KB of 64 KB)",
}
# The child runs from the repository root (cwd), which puts the worker's packages on its path.
CHILD = r"""
import base64, io, json, resource, sys, time
from PIL import Image
from worker.bootstrap import build_worker
worker = build_worker()
start_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
desk = base64.b64encode(open("tests/assets/desk.jpg", "rb").read()).decode()
options = {"cache": False, "store": False}

def jpeg(width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (190, 170, 150)).save(buffer, "JPEG", quality=80)
    return base64.b64encode(buffer.getvalue()).decode()

def deep(levels, leaf):
    for _ in range(levels - 1):
        leaf = {"a": leaf}
    return leaf

case = sys.argv[1]
if case == "big_image":
    job = {"image": jpeg(7071, 7071), "options": {**options, "imgsz": 2048}}
elif case == "thin_image":
    job = {"image": jpeg(20000, 1000), "options": {**options, "imgsz": 2048}}
elif case == "batch_64":
    job = {"images": [{"id": f"i{n}", "image": desk} for n in range(64)], "options": options}
elif case == "rules_100":
    rules = [f"Keep mugs {n + 1} cm from laptops" for n in range(100)]
    job = {"image": desk, "rules": rules, "options": options}
elif case == "crowd_299":
    boxes = [{"class": "cup", "box": [(n * 61) % 1880, (n * 37) % 1040,
              (n * 61) % 1880 + 40, (n * 37) % 1040 + 40]} for n in range(299)]
    boxes.append({"class": "dining table", "box": [0, 0, 1920, 1080]})
    job = {"action": "evaluate", "detections": boxes, "image_size": [1920, 1080],
           "rules": ["Keep mugs 10 cm apart", "Keep mugs 5 cm from the table edge"],
           "calibration": {"mm_per_px": 1.0}}
elif case == "cluster_299":
    boxes = [{"class": "cup", "box": [(n % 20) * 43, (n // 20) * 43,
              (n % 20) * 43 + 40, (n // 20) * 43 + 40]} for n in range(299)]
    boxes.append({"class": "dining table", "box": [0, 0, 1920, 1080]})
    job = {"action": "evaluate", "detections": boxes, "image_size": [1920, 1080],
           "rules": [f"Keep mugs {10 + k} cm apart" for k in range(100)],
           "calibration": {"mm_per_px": 1.0}}
else:
    metadata = {"deep": deep(31, 1)} | {f"k{n}": n for n in range(4_000)}
    job = {"image": desk, "metadata": metadata, "options": options}
started = time.perf_counter()
output = worker.handle({"id": case, "input": job})
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
answer = output.get("error") or "ok"
print(json.dumps({"case": case, "seconds": round(seconds, 2), "peak_mb": round(peak_mb),
                  "added_mb": round(peak_mb - start_mb), "answer": answer[:120]}))
"""


def run_case(case: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mugpos-worst-") as data:
        env_data = {"DATA_DIR": data}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, case],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, **env_data},
        )
    if done.returncode != 0:
        return {"case": case, "answer": f"exit {done.returncode}: {done.stderr[-300:]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES)
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    args = parser.parse_args(argv)
    cases = [case for case in args.cases.split(",") if case]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    rows = [run_case(case) for case in cases]
    if args.json:
        print(json.dumps({"cases": rows}))
        return 0
    print("| case | what | seconds | peak MB | added MB | answer |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {CASES[str(row['case'])]} | {row.get('seconds', '-')} | "
            f"{row.get('peak_mb', '-')} | {row.get('added_mb', '-')} | {row['answer']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
