"""Generate synthetic desk photos with YOLO labels (COCO ids) and ground truth (training.synthetic).

    python -m scripts.generate_scenes --out /tmp/desks --count 200 --seed 1
    python -m scripts.generate_scenes --out /tmp/desks --count 50 --seed 7 --imgsz-range 640 640 --view top

Writes DIR/images/*.jpg, DIR/labels/*.txt (``class cx cy w h``, normalised), DIR/truth/*.json
(every box, the true mm per pixel, the table box, the verdict of synthetic.FIXED_RULES per mug)
and DIR/scenes.json (how the set was made and what is in it). Scene i of a seed is always the
same image, whatever --jobs is.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from training.synthetic import SceneOptions, write_scenes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    parser.add_argument("--count", type=int, required=True, help="number of scenes")
    parser.add_argument("--seed", type=int, required=True, help="the set's seed")
    parser.add_argument(
        "--imgsz-range",
        type=int,
        nargs=2,
        default=(480, 1280),
        metavar=("MIN", "MAX"),
        help="image widths, drawn uniformly (default 480 1280)",
    )
    parser.add_argument("--view", choices=("mixed", "top", "slanted"), default="mixed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args(argv)
    low, high = args.imgsz_range
    if not 32 <= low <= high:
        parser.error("--imgsz-range: need 32 <= MIN <= MAX")
    if args.count < 1:
        parser.error("--count: at least 1")

    start = time.perf_counter()
    options = SceneOptions(widths=(low, high), view=args.view)
    summary = write_scenes(args.out, args.count, args.seed, options, jobs=args.jobs)
    elapsed = time.perf_counter() - start
    print(f"{args.count} scenes (seed {args.seed}) in {args.out} in {elapsed:.1f} s")
    for key in ("views", "objects", "distractors", "verdicts"):
        print(f"  {key}: {json.dumps(summary[key], sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
