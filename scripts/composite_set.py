"""Write the detector's fine-tuning set: generated scenes, composites on real photos, photos alone.

    python -m scripts.composite_set --out /tmp/composites
    python -m scripts.train_detector --out /tmp/ft --data /tmp/composites \\
        --weights models/weights/desk-detector-yolov8n.pt --epochs 10 --max-minutes 25

training/composites.py says how a composite is made and which photos it uses (Debian's opencv-doc
pictures: ``apt-get install opencv-doc``). Scene seeds: train 1 and val 2, as for the detector;
the objects pasted come from seeds 3 (train) and 4 (val); the held-out seed 900001 is never used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.composites import write_composite_set
from training.demo_clip import OPENCV_DATA
from training.synthetic import TRAIN_SEED, VAL_SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-scenes", type=int, default=600)
    parser.add_argument("--val-scenes", type=int, default=100)
    parser.add_argument("--train-composites", type=int, default=300)
    parser.add_argument("--val-composites", type=int, default=60)
    parser.add_argument("--photo-copies", type=int, default=4, help="each photo alone, n views")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not OPENCV_DATA.is_dir():
        raise SystemExit(f"{OPENCV_DATA}: not found (apt-get install opencv-doc)")
    summary = write_composite_set(
        args.out,
        scenes={"train": (TRAIN_SEED, args.train_scenes), "val": (VAL_SEED, args.val_scenes)},
        composites={"train": (3, args.train_composites), "val": (4, args.val_composites)},
        photo_copies=args.photo_copies,
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in summary.items() if k in ("train", "val")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
