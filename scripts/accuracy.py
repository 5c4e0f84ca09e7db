"""Measure the whole worker on held-out generated scenes: mugs found, where, at what scale, and verdicts.

    python -m scripts.accuracy                    # MODEL_DIR from the env, 200 scenes, demo settings
    python -m scripts.accuracy --conf 0.4 --no-augment
    python -m scripts.accuracy --model-dir /tmp/probe --count 20 --json

The scenes come from training.synthetic with seed 900001, which training never uses. Each gets an
``analyze`` job with its true scale, the fixed rule set and the demo job's detector options
(models.demo: imgsz 384, conf 0.45, test-time augmentation; ``--imgsz``, ``--conf``,
``--no-augment`` change them), then a second pass in batches without calibration measures the
scale the worker estimates itself (training/accuracy.py says how). Reported: mug precision /
recall at IoU 0.5, the centre error, the scale error and the agreement of every (rule, true mug)
verdict with the truth (training/metrics.py).

CLIP's mug check is on, as in a job (the demo CLIP is trained to tell mugs from look-alikes;
``--no-clip`` counts every detected cup as a mug).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from models.demo import DEMO_AUGMENT, DEMO_CONF, DEMO_IMGSZ
from training.accuracy import Setup, WorkerUnavailable, describe, measure_worker
from training.synthetic import HELD_OUT_SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="the model folder (default: MODEL_DIR)")
    parser.add_argument("--weights", help="detector file in it (default: YOLO_WEIGHTS)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out set seed")
    parser.add_argument("--count", type=int, default=200, help="number of scenes")
    parser.add_argument(
        "--imgsz", type=int, default=DEMO_IMGSZ, help="detector input size (%(default)s)"
    )
    parser.add_argument(
        "--conf", type=float, default=DEMO_CONF, help="detector confidence (%(default)s)"
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=DEMO_AUGMENT,
        help="test-time augmentation (options.augment; %(default)s)",
    )
    parser.add_argument(
        "--clip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the CLIP mug check (options.clip; %(default)s)",
    )
    parser.add_argument("--batch", type=int, default=16, help="scenes per job in the scale pass")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes generating scenes"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count: at least 1")
    setup = Setup(
        model_dir=args.model_dir,
        weights=args.weights,
        imgsz=args.imgsz,
        conf=args.conf,
        augment=args.augment,
        clip=args.clip,
        batch=args.batch,
        threads=args.threads,
    )

    # the libraries print to stdout; the report alone goes there (so --json is parseable)
    with contextlib.redirect_stdout(sys.stderr):
        try:
            report = measure_worker(setup, args.count, args.seed, jobs=args.jobs)
        except WorkerUnavailable as error:
            raise SystemExit(f"accuracy: {error}") from None
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
