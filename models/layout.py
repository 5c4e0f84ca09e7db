"""The model folder's layout: which files the worker reads and what ``manifest.json`` says of them.

```
MODEL_DIR/
  manifest.json              {"models": {"<entry>": {"name", "demo", "source", "checks_mugs"}}}
  yolov8s.pt                 YOLO_WEIGHTS (an ultralytics checkpoint)
  clip-vit-base-patch32/     CLIP_MODEL (a Hugging Face folder: config, safetensors, tokenizer)
```
``python -m scripts.fetch_models`` writes both the production and the demo models in this layout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MANIFEST = "manifest.json"
ModelSource = Literal["model_dir", "hf_cache"]
CLIP_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """What the result says about one model: its name, checksum, whether it is a demo model, and
    where it was loaded from (``model_dir`` or ``hf_cache``, SPEC 8); for CLIP, whether its mug
    score may decide (production weights and the trained demo CLIP: yes; random weights: no)."""

    name: str
    sha256: str
    demo: bool
    source: ModelSource = "model_dir"
    revision: str | None = None
    checks_mugs: bool = True


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def install_file(source: Path, folder: Path, name: str) -> Path:
    """Copy ``source`` to ``folder/name`` through one rename, so a reader never sees half a file."""
    target = folder / name
    partial = folder / f".{name}.partial"
    shutil.copyfile(source, partial)
    partial.replace(target)
    return target


def read_manifest(model_dir: Path) -> dict[str, dict[str, object]]:
    path = model_dir / MANIFEST
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("models", {}))


def record_model(
    model_dir: Path,
    entry: str,
    *,
    name: str,
    demo: bool,
    source: str,
    checks_mugs: bool | None = None,
) -> None:
    """Add or replace one entry of the manifest, keeping the others (``checks_mugs``: CLIP's)."""
    models = read_manifest(model_dir)
    models[entry] = {"name": name, "demo": demo, "source": source}
    if checks_mugs is not None:
        models[entry]["checks_mugs"] = checks_mugs
    (model_dir / MANIFEST).write_text(
        json.dumps({"models": models}, indent=2, sort_keys=True) + "\n"
    )
