"""Measurement on the table plane against generated scenes' true footprints (SPEC 10).

    python -m scripts.plane_accuracy                      # 200 slanted scenes of seed 900001
    python -m scripts.plane_accuracy --view top --count 100
    python -m scripts.plane_accuracy --marker             # calibrated by a marker on each table
    python -m scripts.plane_accuracy --json

No models: each scene's true boxes are judged as ``evaluate`` judges given detections, calibrated
by its four table corners and, for comparison, with one mm_per_px (training/plane_accuracy.py).
"""

from __future__ import annotations

import argparse
import json

from training.plane_accuracy import describe_plane, measure_plane
from training.synthetic import HELD_OUT_SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out set seed")
    parser.add_argument("--count", type=int, default=200, help="number of scenes")
    parser.add_argument("--view", choices=("slanted", "top", "mixed"), default="slanted")
    parser.add_argument(
        "--marker", action="store_true", help="calibrate by an ArUco marker on each table"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count: at least 1")
    report = measure_plane(args.count, args.seed, args.view, args.marker)
    print(json.dumps(report, indent=2) if args.json else describe_plane(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
