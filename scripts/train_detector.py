"""Train the demo detector on generated desk scenes and put it in the worker's model folder.

    python scripts/train_detector.py --out volume/models     # 1000 scenes, <= 60 epochs, <= 55 min
    python scripts/train_detector.py --out volume/models --ship   # ... and replace the shipped demo
    python scripts/train_detector.py --out /tmp/probe --train-count 200 --val-count 50 --epochs 2
    python scripts/train_detector.py --out volume/models --data my_desks/ \\
        --weights volume/models/yolov8s.pt --epochs 30                 # fine-tune on your photos

No pretrained weights can be downloaded here, so YOLOv8n starts from ultralytics' packaged
``yolov8n.yaml`` (random init) and learns from scenes drawn by ``synthetic/`` (train seed 1, val
seed 2; scripts/accuracy.py measures on seed 900001, which training never sees). Labels use COCO
class ids and the dataset names all 80 COCO classes, so the model's names are COCO's and the
worker needs no mapping.

Training is compute-bound: on the 2-core development machine one image costs about 0.1 s per
epoch at 320 px (forward and backward of YOLOv8n; the data pipeline is ~5%), so the defaults are
what fits an hour there: 256 px input (95% of the mugs keep a short side of 14 px or more in the
scenes), --max-minutes 55 capping the training (when the first epoch shows that the requested
epochs would not fit, the epochs are fitted to the budget instead, so a faster machine trains
more epochs; ``--max-minutes 0`` trains exactly ``--epochs``).

The optimizer is AdamW at ``--lr0`` 0.001 with one step per batch, both set explicitly:
ultralytics' ``optimizer="auto"`` picks AdamW at 0.01 / (4 + classes) for short runs, which with
the 80 COCO names is 0.00012 (a first run at that rate was at val mAP50 0.03 after 5 epochs), and
its nominal batch of 64 accumulates gradients over 4 batches, which leaves a 50-minute run only
about 400 steps.

``--data`` trains on your own YOLO-format set instead (COCO class ids): a dataset yaml, a folder
with images/train + images/val (labels/ beside), or a folder with images/ and labels/ that is
split 90/10 by --seed; start it from --weights, e.g. the demo weights this script wrote.

Writes OUT/<--weights-name> (default yolov8s.pt, the worker's YOLO_WEIGHTS default), its entry in
OUT/manifest.json (``demo: true`` for synthetic training) and OUT/<weights>.train.json: seeds,
counts, epochs, seconds per epoch, the final validation metrics and the library versions.
``--ship`` also copies both into models/weights, the demo detector ``fetch_models.py --demo``
installs (models/demo.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.demo import DEMO_DETECTOR, DEMO_DETECTOR_RECORD  # noqa: E402
from models.layout import install_file, record_model, sha256_file  # noqa: E402
from models.runtime import prepare_offline  # noqa: E402
from synthetic import (  # noqa: E402
    GENERATOR,
    HELD_OUT_SEED,
    TRAIN_SEED,
    VAL_SEED,
    SceneOptions,
    write_scenes,
)

ARCHITECTURE = "yolov8n.yaml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# ultralytics puts torch on cpu_count - 1 threads (1 on two cores) whenever it picks a device:
# at the trainer's start and again for the final validation. These put it back each time.
THREAD_EVENTS = (
    "on_pretrain_routine_start",
    "on_train_start",
    "on_train_epoch_start",
    "on_val_start",
)


def coco_names() -> dict[int, str]:
    """The 80 COCO class names, from the dataset yaml that ships inside ultralytics."""
    from ultralytics.utils import ROOT as ULTRALYTICS
    from ultralytics.utils import YAML

    return {
        int(k): str(v)
        for k, v in YAML.load(ULTRALYTICS / "cfg/datasets/coco.yaml")["names"].items()
    }


def write_yaml(path: Path, content: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
    return path


def synthetic_dataset(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Any]]:
    """Generate the train and val sets; returns the dataset yaml and what to record about it."""
    options = SceneOptions(widths=tuple(args.imgsz_range))
    data = work / "data"
    sets = {}
    for split, seed, count in (
        ("train", args.train_seed, args.train_count),
        ("val", args.val_seed, args.val_count),
    ):
        start = time.perf_counter()
        write_scenes(data / split, count, seed, options, jobs=args.jobs)
        sets[split] = {
            "seed": seed,
            "count": count,
            "generate_s": round(time.perf_counter() - start, 1),
        }
        print(f"generated {count} {split} scenes (seed {seed}) in {sets[split]['generate_s']} s")
    names = coco_names()
    content = {"path": str(data), "train": "train/images", "val": "val/images", "names": names}
    info = {
        "kind": "synthetic",
        "generator": GENERATOR,
        "widths": list(options.widths),
        **sets,
        "held_out_seed": HELD_OUT_SEED,
    }
    return write_yaml(work / "dataset.yaml", content), info


def user_dataset(source: Path, work: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """A dataset yaml for ``--data``: the given yaml, or one written for a YOLO-format folder."""
    info: dict[str, Any] = {"kind": "user", "path": str(source)}
    if source.is_file():
        return source, info
    images = source / "images"
    if not images.is_dir():
        raise SystemExit(f"--data: {source} has no images/ folder (and is not a dataset yaml)")
    content: dict[str, Any] = {"path": str(source), "names": coco_names()}
    if (images / "train").is_dir() and (images / "val").is_dir():
        content.update(train="images/train", val="images/val")
    else:
        files = sorted(str(p) for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise SystemExit(f"--data: {images} needs at least 2 images to split off a val set")
        random.Random(seed).shuffle(files)
        cut = max(1, len(files) // 10)
        (work / "val.txt").write_text("\n".join(files[:cut]) + "\n")
        (work / "train.txt").write_text("\n".join(files[cut:]) + "\n")
        content.update(train=str(work / "train.txt"), val=str(work / "val.txt"))
        info.update(split_seed=seed, train_count=len(files) - cut, val_count=cut)
    return write_yaml(work / "dataset.yaml", content), info


def final_metrics(trainer: Any) -> dict[str, Any]:
    """mAP50, precision and recall of the final validation (best weights), overall and per class."""
    results = trainer.metrics or {}
    overall = {
        "mAP50": results.get("metrics/mAP50(B)"),
        "mAP50-95": results.get("metrics/mAP50-95(B)"),
        "precision": results.get("metrics/precision(B)"),
        "recall": results.get("metrics/recall(B)"),
    }
    per_class = {
        row["Class"]: {
            "instances": int(row["Instances"]),
            "precision": row["Box-P"],
            "recall": row["Box-R"],
            "mAP50": row["mAP50"],
            "mAP50-95": row["mAP50-95"],
        }
        for row in trainer.validator.metrics.summary(decimals=4)
    }
    rounded = {k: None if v is None else round(float(v), 4) for k, v in overall.items()}
    return {**rounded, "per_class": per_class}


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
    if args.ship and args.data is not None:
        parser.error(
            "--ship replaces the demo detector trained on synthetic desks; not with --data"
        )
    if HELD_OUT_SEED in (args.train_seed, args.val_seed):
        parser.error(f"seed {HELD_OUT_SEED} is the held-out set of scripts/accuracy.py")
    if args.weights is not None and not args.weights.is_file():
        parser.error(f"--weights: no file at {args.weights}")
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    with tempfile.TemporaryDirectory(prefix="train-detector-") as scratch:
        prepare_offline(Path(scratch) / "runtime")
        work = (args.work or Path(scratch) / "work").absolute()
        work.mkdir(parents=True, exist_ok=True)
        if args.data is not None:
            data_yaml, data_info = user_dataset(args.data.absolute(), work, args.seed)
        else:
            data_yaml, data_info = synthetic_dataset(args, work)
        record = train(args, data_yaml, work, out)
    record["data"] = data_info
    record["command"] = ["scripts/train_detector.py", *(sys.argv[1:] if argv is None else argv)]
    record["wall_time_s"] = {
        "total": round(time.perf_counter() - started, 1),
        **record["wall_time_s"],
    }
    weights = out / args.weights_name
    (out / f"{args.weights_name}.train.json").write_text(json.dumps(record, indent=2) + "\n")
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
        print(f"shipped as {DEMO_DETECTOR.relative_to(ROOT)} (fetch_models.py --demo installs it)")
    return 0


def ship(
    weights: Path,
    record: dict[str, Any],
    target: Path = DEMO_DETECTOR,
    record_target: Path = DEMO_DETECTOR_RECORD,
) -> None:
    """Make these weights the demo detector that ``fetch_models.py --demo`` installs."""
    install_file(weights, target.parent, target.name)
    record_target.write_text(json.dumps(record, indent=2) + "\n")


class EpochClock:
    """Times each epoch (training and its validation) and keeps the run inside the budget.

    After the first epoch, when the requested epochs would overrun ``budget_s``, the budget is
    handed to ultralytics as its ``time`` option, which from then on fits the number of epochs,
    the learning-rate schedule and the closing of mosaic augmentation to the time left.
    """

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.durations: list[float] = []
        self.fitted_to_budget = False
        self._started: float | None = None

    def epoch_start(self, trainer: Any) -> None:
        self._started = time.perf_counter()

    def epoch_end(self, trainer: Any) -> None:
        # also called once for the final validation of best.pt, with no epoch started
        if self._started is None:
            return
        self.durations.append(time.perf_counter() - self._started)
        self._started = None
        if self.budget_s is None or trainer.args.time or len(self.durations) > 1:
            return
        projected = self.durations[0] * trainer.epochs
        if projected > self.budget_s:
            trainer.args.time = self.budget_s / 3600
            self.fitted_to_budget = True
            print(
                f"{trainer.epochs} epochs would take about {projected / 60:.0f} min: training "
                f"for {self.budget_s / 60:g} min instead (epochs fitted to the time)"
            )


def train(args: argparse.Namespace, data_yaml: Path, work: Path, out: Path) -> dict[str, Any]:
    """Run ultralytics' trainer, install the best weights and say how it went."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    start_from = str(args.weights.absolute()) if args.weights else ARCHITECTURE
    model = YOLO(start_from, task="detect")
    for event in THREAD_EVENTS:
        model.add_callback(event, lambda _: torch.set_num_threads(args.threads))
    clock = EpochClock(args.max_minutes * 60 if args.max_minutes else None)
    model.add_callback("on_train_epoch_start", clock.epoch_start)
    model.add_callback("on_fit_epoch_end", clock.epoch_end)

    start = time.perf_counter()
    model.train(
        data=str(data_yaml),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        optimizer="AdamW",
        lr0=args.lr0,
        nbs=args.batch,  # one optimizer step per batch (ultralytics accumulates to 64 otherwise)
        device=args.device,
        workers=2,  # ultralytics uses 0 on the CPU, where the model, not the loading, is slow
        cache="ram",  # ultralytics falls back to reading from disk when it does not fit
        plots=False,
        amp=False,
        seed=args.seed,
        deterministic=True,
        project=str(work / "runs"),
        name="train",
        exist_ok=True,
    )
    train_s = time.perf_counter() - start
    trainer = model.trainer
    epochs = len(clock.durations)
    best = trainer.best if trainer.best.exists() else trainer.last
    weights = install_file(best, out, args.weights_name)
    loaded = YOLO(str(weights), task="detect")
    arch = Path(str(loaded.model.yaml.get("yaml_file", ARCHITECTURE))).stem
    if args.data is None:
        label = f"{arch} trained on synthetic desks (demo)"
        source = (
            f"scripts/train_detector.py: {ARCHITECTURE} random init, {args.train_count} synthetic "
            f"scenes (seed {args.train_seed}), {epochs} epochs at {args.imgsz} px"
        )
    else:
        label = f"{arch} fine-tuned on {args.data.name}"
        source = (
            f"scripts/train_detector.py: {start_from} fine-tuned on {args.data}, {epochs} epochs"
        )
    record_model(out, args.weights_name, name=label, demo=args.data is None, source=source)
    return {
        "weights": args.weights_name,
        "name": label,
        "source": source,
        "sha256": sha256_file(weights),
        "size_bytes": weights.stat().st_size,
        "classes": len(loaded.names),
        "start_from": start_from,
        "epochs": epochs,
        "epochs_requested": args.epochs,
        "max_minutes": args.max_minutes,
        "fitted_to_budget": clock.fitted_to_budget,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "optimizer": "AdamW",
        "lr0": args.lr0,
        "nbs": args.batch,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "wall_time_s": {"train": round(train_s, 1)},
        "epoch_s": [round(s, 1) for s in clock.durations],
        "s_per_epoch": round(statistics.median(clock.durations), 2) if clock.durations else None,
        "val": final_metrics(trainer),
        "versions": {
            "python": platform.python_version(),
            "ultralytics": version("ultralytics"),
            "torch": version("torch"),
        },
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    raise SystemExit(main())
