"""Train the demo detector on generated desk scenes and put it in the worker's model folder.

    python -m scripts.train_detector --out volume/models     # 1000 scenes, <= 60 epochs, <= 55 min
    python -m scripts.train_detector --out volume/models --ship   # ... and replace the shipped demo
    python -m scripts.train_detector --out /tmp/probe --train-count 200 --val-count 50 --epochs 2
    python -m scripts.train_detector --out volume/models --data my_desks/ \\
        --weights volume/models/yolov8s.pt --epochs 30                 # fine-tune on your photos

YOLOv8n starts from ultralytics' packaged ``yolov8n.yaml`` (random init) and learns from scenes
drawn by ``training.synthetic`` (train seed 1, val seed 2; ``python -m scripts.accuracy``
measures on seed 900001, which training never sees), with COCO class ids and names, so the
worker needs no mapping (training/detector.py: the optimizer and the time budget).

Training is compute-bound: on the 2-core development machine one image costs about 0.1 s per
epoch at 320 px (forward and backward of YOLOv8n; the data pipeline is ~5%), so the defaults are
what fits an hour there: 256 px input (95% of the mugs keep a short side of 14 px or more in the
scenes), --max-minutes 55 capping the training (when the first epoch shows that the requested
epochs would not fit, the epochs are fitted to the budget instead, so a faster machine trains
more epochs; ``--max-minutes 0`` trains exactly ``--epochs``).

``--data`` trains on your own YOLO-format set instead (COCO class ids): a dataset yaml, a folder
with images/train + images/val (labels/ beside), or a folder with images/ and labels/ that is
split 90/10 by --seed; start it from --weights, e.g. the demo weights this script wrote.

Writes OUT/<--weights-name> (default yolov8s.pt, the worker's YOLO_WEIGHTS default), its entry in
OUT/manifest.json (``demo: true`` for synthetic training) and OUT/<weights>.train.json: seeds,
counts, epochs, seconds per epoch, the final validation metrics and the library versions.
``--ship`` also copies both into models/weights, the demo detector ``fetch_models --demo``
installs (models/demo.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from models.demo import DEMO_DETECTOR
from training.composites import COMPOSITES_RECORD
from training.datasets import DatasetError, SceneSets
from training.detector import ARCHITECTURE, TrainConfig, ship, train_detector
from training.synthetic import HELD_OUT_SEED, TRAIN_SEED, VAL_SEED

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the worker's model folder")
    parser.add_argument("--weights-name", default="yolov8s.pt", help="file name (YOLO_WEIGHTS)")
    parser.add_argument("--train-count", type=int, default=1000, help="generated train scenes")
    parser.add_argument("--val-count", type=int, default=100, help="generated val scenes")
    parser.add_argument("--train-seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--val-seed", type=int, default=VAL_SEED)
    parser.add_argument(
        "--imgsz-range", type=int, nargs=2, default=(480, 1280), metavar=("MIN", "MAX")
    )
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=55.0,
        help="training budget: fewer epochs when the requested ones would not fit (0: none)",
    )
    parser.add_argument("--imgsz", type=int, default=256, help="training input size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr0", type=float, default=0.001, help="AdamW's initial learning rate")
    parser.add_argument("--seed", type=int, default=0, help="training seed (and --data split)")
    parser.add_argument("--data", type=Path, help="your own YOLO-format dataset (folder or yaml)")
    parser.add_argument(
        "--weights", type=Path, help=f"start from these weights (default: {ARCHITECTURE}, random)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes generating scenes"
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the dataset and ultralytics' run here (default: a temp folder)",
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help=f"also replace the shipped demo detector ({DEMO_DETECTOR.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    if args.ship and args.data is not None and not (args.data / COMPOSITES_RECORD).is_file():
        parser.error(
            "--ship replaces the demo detector trained on the project's own data (generated "
            "scenes, or scripts.composite_set's folder); not with --data of yours"
        )
    if HELD_OUT_SEED in (args.train_seed, args.val_seed):
        parser.error(f"seed {HELD_OUT_SEED} is the held-out set of scripts.accuracy")
    if args.weights is not None and not args.weights.is_file():
        parser.error(f"--weights: no file at {args.weights}")
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        weights_name=args.weights_name,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        imgsz=args.imgsz,
        batch=args.batch,
        lr0=args.lr0,
        seed=args.seed,
        weights=args.weights,
        device=args.device,
        threads=args.threads,
    )
    low, high = args.imgsz_range
    data = args.data or SceneSets(
        train_count=args.train_count,
        val_count=args.val_count,
        train_seed=args.train_seed,
        val_seed=args.val_seed,
        widths=(low, high),
        jobs=args.jobs,
    )
    command = ["python", "-m", "scripts.train_detector", *(sys.argv[1:] if argv is None else argv)]
    try:
        record = train_detector(config, data, out, args.work, command)
    except DatasetError as error:
        raise SystemExit(f"--data: {error}") from None
    weights = out / args.weights_name
    if args.ship:
        ship(weights, record)

    val = record["val"]
    print(f"\n{weights}: {weights.stat().st_size / 1e6:.1f} MB, sha256 {record['sha256'][:12]}")
    print(
        f"{record['epochs']} epochs in {record['wall_time_s']['train']:.0f} s "
        f"({record['s_per_epoch']:.1f} s/epoch), whole run {record['wall_time_s']['total']:.0f} s"
    )
    cup = val["per_class"].get("cup", {})
    print(
        f"val: mAP50 {val['mAP50']}, precision {val['precision']}, recall {val['recall']}; "
        f"cup: mAP50 {cup.get('mAP50')}, precision {cup.get('precision')}, recall {cup.get('recall')}"
    )
    print(f"recorded in {out / 'manifest.json'} and {out / (args.weights_name + '.train.json')}")
    if args.ship:
        print(f"shipped as {DEMO_DETECTOR.relative_to(ROOT)} (fetch_models --demo installs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
