"""Train a YOLOv8 detector with ultralytics and install it in the worker's model folder.

No pretrained weights can be downloaded on the development machines, so by default YOLOv8n starts
from ultralytics' packaged ``yolov8n.yaml`` (random init) and learns from generated scenes
(``training.datasets``); ``TrainConfig.weights`` starts from a checkpoint instead (fine-tuning).

The optimizer is AdamW at ``lr0`` 0.001 with one step per batch, both set explicitly:
ultralytics' ``optimizer="auto"`` picks AdamW at 0.01 / (4 + classes) for short runs, which with
the 80 COCO names is 0.00012 (a first run at that rate was at val mAP50 0.03 after 5 epochs), and
its nominal batch of 64 accumulates gradients over 4 batches, which leaves a 50-minute run only
about 400 steps. ``max_minutes`` caps the training: when the first epoch shows that the requested
epochs would not fit, the epochs are fitted to the budget instead (``EpochClock``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from models.demo import DEMO_DETECTOR, DEMO_DETECTOR_RECORD
from models.layout import install_file, record_model, sha256_file
from models.runtime import prepare_offline
from training.composites import COMPOSITES_RECORD
from training.datasets import SceneSets, synthetic_dataset, user_dataset

ARCHITECTURE = "yolov8n.yaml"
# ultralytics puts torch on cpu_count - 1 threads (1 on two cores) whenever it picks a device:
# at the trainer's start and again for the final validation. These put it back each time.
THREAD_EVENTS = (
    "on_pretrain_routine_start",
    "on_train_start",
    "on_train_epoch_start",
    "on_val_start",
)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the weights' file name in the model folder, schedule, input size, device."""

    weights_name: str = "yolov8s.pt"  # the worker's YOLO_WEIGHTS default: nothing to configure
    epochs: int = 60
    max_minutes: float = 55.0  # 0: train exactly ``epochs``
    imgsz: int = 256
    batch: int = 16
    lr0: float = 0.001
    seed: int = 0
    weights: Path | None = None  # start from these; None: ARCHITECTURE, random init
    device: str = "cpu"
    threads: int = 1


def train_detector(
    config: TrainConfig,
    data: SceneSets | Path,
    out: Path,
    work: Path | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Make the dataset (generated ``SceneSets``, or your YOLO data at a path), train, install the
    best weights as ``out/<weights_name>`` with their manifest entry, and write the training record
    ``out/<weights_name>.train.json``; returns that record. ``work`` keeps the dataset and
    ultralytics' run (default: a temporary folder); ``command`` is recorded as what ran.
    """
    started = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
    with tempfile.TemporaryDirectory(prefix="train-detector-") as scratch:
        prepare_offline(Path(scratch) / "runtime")
        work = (work or Path(scratch) / "work").absolute()
        work.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            data_yaml, data_info = user_dataset(data.absolute(), work, config.seed)
            if (data / COMPOSITES_RECORD).is_file():  # the project's own set: say what it holds
                data_info = {
                    **data_info,
                    "kind": "composites",
                    **json.loads((data / COMPOSITES_RECORD).read_text()),
                }
        else:
            data_yaml, data_info = synthetic_dataset(data, work)
        record = train(config, data, data_yaml, work, out)
    record["data"] = data_info
    record["command"] = list(command)
    record["wall_time_s"] = {
        "total": round(time.perf_counter() - started, 1),
        **record["wall_time_s"],
    }
    (out / f"{config.weights_name}.train.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def ship(
    weights: Path,
    record: dict[str, Any],
    target: Path = DEMO_DETECTOR,
    record_target: Path = DEMO_DETECTOR_RECORD,
) -> None:
    """Make these weights the demo detector that ``fetch_models --demo`` installs."""
    install_file(weights, target.parent, target.name)
    record_target.write_text(json.dumps(record, indent=2) + "\n")


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


def train(
    config: TrainConfig, data: SceneSets | Path, data_yaml: Path, work: Path, out: Path
) -> dict[str, Any]:
    """Run ultralytics' trainer, install the best weights and say how it went."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(config.threads)
    start_from = str(config.weights.absolute()) if config.weights else ARCHITECTURE
    model = YOLO(start_from, task="detect")
    for event in THREAD_EVENTS:
        model.add_callback(event, lambda _: torch.set_num_threads(config.threads))
    clock = EpochClock(config.max_minutes * 60 if config.max_minutes else None)
    model.add_callback("on_train_epoch_start", clock.epoch_start)
    model.add_callback("on_fit_epoch_end", clock.epoch_end)

    start = time.perf_counter()
    model.train(
        data=str(data_yaml),
        epochs=config.epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        optimizer="AdamW",
        lr0=config.lr0,
        nbs=config.batch,  # one optimizer step per batch (ultralytics accumulates to 64 otherwise)
        device=config.device,
        workers=2,  # ultralytics uses 0 on the CPU, where the model, not the loading, is slow
        cache="ram",  # ultralytics falls back to reading from disk when it does not fit
        plots=False,
        amp=False,
        seed=config.seed,
        deterministic=True,
        project=str(work / "runs"),
        name="train",
        exist_ok=True,
    )
    train_s = time.perf_counter() - start
    trainer = model.trainer
    assert trainer is not None  # train() has run
    epochs = len(clock.durations)
    best = trainer.best if trainer.best.exists() else trainer.last
    weights = install_file(best, out, config.weights_name)
    loaded = YOLO(str(weights), task="detect")
    architecture: dict[str, object] = getattr(loaded.model, "yaml", {})
    arch = Path(str(architecture.get("yaml_file", ARCHITECTURE))).stem
    if isinstance(data, Path) and (data / COMPOSITES_RECORD).is_file():
        # the project's own set (scripts/composite_set.py): still a demo model
        label = f"{arch} trained on synthetic desks and composites on real photos (demo)"
        source = (
            f"scripts/train_detector.py: {Path(start_from).name} fine-tuned on generated scenes, "
            f"composites on real photos and the photos alone ({data.name}), {epochs} epochs at "
            f"{config.imgsz} px"
        )
    elif isinstance(data, Path):
        label = f"{arch} fine-tuned on {data.name}"
        source = f"scripts/train_detector.py: {start_from} fine-tuned on {data}, {epochs} epochs"
    else:
        label = f"{arch} trained on synthetic desks (demo)"
        source = (
            f"scripts/train_detector.py: {ARCHITECTURE} random init, {data.train_count} synthetic "
            f"scenes (seed {data.train_seed}), {epochs} epochs at {config.imgsz} px"
        )
    demo = not isinstance(data, Path) or (data / COMPOSITES_RECORD).is_file()
    record_model(out, config.weights_name, name=label, demo=demo, source=source)
    return {
        "weights": config.weights_name,
        "name": label,
        "source": source,
        "sha256": sha256_file(weights),
        "size_bytes": weights.stat().st_size,
        "classes": len(loaded.names),
        "start_from": start_from,
        "epochs": epochs,
        "epochs_requested": config.epochs,
        "max_minutes": config.max_minutes,
        "fitted_to_budget": clock.fitted_to_budget,
        "imgsz": config.imgsz,
        "batch": config.batch,
        "optimizer": "AdamW",
        "lr0": config.lr0,
        "nbs": config.batch,
        "seed": config.seed,
        "device": config.device,
        "threads": config.threads,
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
