"""Write generated scenes to disk in the layout ultralytics reads, with the truth beside them.

```
DIR/images/000000.jpg   the photo
DIR/labels/000000.txt   YOLO labels, COCO class ids (ultralytics finds them from the image path)
DIR/truth/000000.json   every box, the true mm per pixel, the table box, the expected verdicts
DIR/scenes.json         how the set was made: generator, seed, count, options
```
Scene ``i`` of a set is ``generate_scene(seed, i)``, so a set is the same whether it is written by
one process or several, and any single scene can be regenerated alone.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from training.synthetic.scenes import GENERATOR, SceneOptions, generate_scene
from training.synthetic.truth import FIXED_RULES

SET_MANIFEST = "scenes.json"
# Seeds of the sets: training and validation by default, and the held-out set that measures the
# worker (training.accuracy), which training must never see.
TRAIN_SEED = 1
VAL_SEED = 2
HELD_OUT_SEED = 900_001


def scene_name(index: int) -> str:
    return f"{index:06d}"


def write_scene(out: Path, seed: int, index: int, options: SceneOptions) -> dict[str, Any]:
    """Generate and write one scene; returns its truth (for the set's summary)."""
    scene = generate_scene(seed, index, options)
    name = scene_name(index)
    (out / "images" / f"{name}.jpg").write_bytes(scene.jpeg())
    (out / "labels" / f"{name}.txt").write_text(scene.yolo_labels())
    truth = {**scene.truth, "file": f"images/{name}.jpg"}
    (out / "truth" / f"{name}.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def write_scenes(
    out: Path, count: int, seed: int, options: SceneOptions | None = None, jobs: int = 1
) -> dict[str, Any]:
    """Write scenes ``0 .. count-1`` of ``seed`` under ``out``; returns the set's summary."""
    options = options or SceneOptions()
    for sub in ("images", "labels", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    one = partial(write_scene, out, seed, options=options)
    if jobs > 1 and count > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            truths = list(pool.map(one, range(count), chunksize=max(1, min(16, count // jobs))))
    else:
        truths = [one(index) for index in range(count)]
    summary = {
        "generator": GENERATOR,
        "seed": seed,
        "count": count,
        "options": asdict(options),
        "rules": list(FIXED_RULES),
        "views": dict(Counter(t["view"] for t in truths)),
        "objects": dict(Counter(o["class"] for t in truths for o in t["objects"])),
        "distractors": dict(Counter(d["kind"] for t in truths for d in t["distractors"])),
        "verdicts": {
            rule["id"]: dict(
                Counter(
                    v["status"] for t in truths for v in t["verdicts"] if v["rule_id"] == rule["id"]
                )
            )
            for rule in FIXED_RULES
        },
    }
    (out / SET_MANIFEST).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def read_truths(folder: Path) -> list[dict[str, Any]]:
    """The truth of every scene of a written set, in index order."""
    return [json.loads(path.read_text()) for path in sorted((folder / "truth").glob("*.json"))]
