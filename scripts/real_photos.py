"""The worker on real photographs from installed packages: phantom mugs and real mugs found.

    python -m scripts.real_photos                 # MODEL_DIR from the env, the demo job's options
    python -m scripts.real_photos --conf 0.25 --no-augment --json

Each photo (training/real_photos.py lists them, their packages and licences) gets one ``analyze``
job with the CLIP mug check on, as a user's job has it (``--no-clip``: off); a kept mug is a
phantom when it overlaps no hand-drawn true mug at IoU 0.5.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from models.demo import DEMO_AUGMENT, DEMO_CONF, DEMO_IMGSZ
from training.real_photos import describe, measure_photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="the model folder (default: MODEL_DIR)")
    parser.add_argument("--imgsz", type=int, default=DEMO_IMGSZ, help="(%(default)s)")
    parser.add_argument("--conf", type=float, default=DEMO_CONF, help="(%(default)s)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=DEMO_AUGMENT)
    parser.add_argument(
        "--clip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the CLIP mug check (%(default)s; --no-clip: every detected cup is a mug)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    options = {"imgsz": args.imgsz, "conf": args.conf, "augment": args.augment, "clip": args.clip}
    # the libraries print to stdout; the report alone goes there (so --json is parseable)
    with contextlib.redirect_stdout(sys.stderr):
        report = measure_photos(args.model_dir, options, threads=args.threads)
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
