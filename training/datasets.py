"""Dataset yamls for ultralytics' trainer: generated train and val sets, or your own YOLO folder.

Both name all 80 COCO classes (from the coco.yaml inside ultralytics), so a trained model's names
are COCO's and the worker needs no mapping. Kept beside ``training.synthetic`` rather than in it:
the generator needs neither torch nor ultralytics, this does.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.synthetic import (
    GENERATOR,
    HELD_OUT_SEED,
    TRAIN_SEED,
    VAL_SEED,
    SceneOptions,
    write_scenes,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DatasetError(ValueError):
    """Your data is not a dataset yaml or a YOLO-format folder this can use."""


@dataclass(frozen=True)
class SceneSets:
    """The generated train and val sets: seeds, counts, image widths, processes drawing them."""

    train_count: int = 1000
    val_count: int = 100
    train_seed: int = TRAIN_SEED
    val_seed: int = VAL_SEED
    widths: tuple[int, int] = (480, 1280)
    jobs: int = 1


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


def synthetic_dataset(sets: SceneSets, work: Path) -> tuple[Path, dict[str, Any]]:
    """Generate the train and val sets; returns the dataset yaml and what to record about it."""
    options = SceneOptions(widths=sets.widths)
    data = work / "data"
    recorded = {}
    for split, seed, count in (
        ("train", sets.train_seed, sets.train_count),
        ("val", sets.val_seed, sets.val_count),
    ):
        start = time.perf_counter()
        write_scenes(data / split, count, seed, options, jobs=sets.jobs)
        recorded[split] = {
            "seed": seed,
            "count": count,
            "generate_s": round(time.perf_counter() - start, 1),
        }
        print(
            f"generated {count} {split} scenes (seed {seed}) in {recorded[split]['generate_s']} s"
        )
    names = coco_names()
    content = {"path": str(data), "train": "train/images", "val": "val/images", "names": names}
    info = {
        "kind": "synthetic",
        "generator": GENERATOR,
        "widths": list(options.widths),
        **recorded,
        "held_out_seed": HELD_OUT_SEED,
    }
    return write_yaml(work / "dataset.yaml", content), info


def user_dataset(source: Path, work: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """A dataset yaml for your data: the given yaml, or one written for a YOLO-format folder.

    A folder holds images/train + images/val (labels/ beside), or a flat images/ + labels/ that
    is split 90/10 by ``seed``; DatasetError when it is neither.
    """
    info: dict[str, Any] = {"kind": "user", "path": str(source)}
    if source.is_file():
        return source, info
    images = source / "images"
    if not images.is_dir():
        raise DatasetError(f"{source} has no images/ folder (and is not a dataset yaml)")
    content: dict[str, Any] = {"path": str(source), "names": coco_names()}
    if (images / "train").is_dir() and (images / "val").is_dir():
        content.update(train="images/train", val="images/val")
    else:
        files = sorted(str(p) for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise DatasetError(f"{images} needs at least 2 images to split off a val set")
        random.Random(seed).shuffle(files)
        cut = max(1, len(files) // 10)
        (work / "val.txt").write_text("\n".join(files[:cut]) + "\n")
        (work / "train.txt").write_text("\n".join(files[cut:]) + "\n")
        content.update(train=str(work / "train.txt"), val=str(work / "val.txt"))
        info.update(split_seed=seed, train_count=len(files) - cut, val_count=cut)
    return write_yaml(work / "dataset.yaml", content), info
