"""Where each model is found: ``MODEL_DIR`` first, then the Hugging Face cache (SPEC 8).

RunPod's cached models put Hugging Face repositories on every worker in the hub cache layout:

```
<HF_HUB_CACHE>/models--<org>--<name>/
  refs/main                  the commit the snapshot below was taken at
  snapshots/<commit>/...     the repository's files (symlinks into ../../blobs)
```
So a user can attach ``openai/clip-vit-base-patch32`` to an endpoint instead of filling a network
volume (RunPod caches one model per endpoint; ``Ultralytics/YOLOv8`` is read the same way should
that change). The loaders get a ``Located`` model and never look anywhere
themselves; a model found nowhere raises ``ModelNotFound`` with every place that was looked in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.layout import CLIP_WEIGHTS, ModelInfo, ModelSource, read_manifest, sha256_file

# transformers reads either; a cached openai/clip-vit-base-patch32 may hold only the .bin
CLIP_WEIGHT_FILES = (CLIP_WEIGHTS, "pytorch_model.bin")


class ModelNotFound(FileNotFoundError):
    """No place holds the model; ``places`` says where it was looked for and what was missing."""

    def __init__(self, model: str, places: list[str]) -> None:
        self.places = places
        super().__init__(f"{model} not found: looked in " + "; then in ".join(places))


@dataclass(frozen=True)
class Located:
    """One model on disk: the path its loader opens, the file that identifies it, and its origin."""

    source: ModelSource
    path: Path  # the detector's checkpoint, or CLIP's folder
    weights: Path  # the file whose sha256 names the model
    name: str
    demo: bool
    revision: str | None = None  # the cache's commit
    checks_mugs: bool = True

    def identity(self) -> ModelInfo:
        """What every result says of the model; the checksum is of the weights as found."""
        return ModelInfo(
            self.name,
            sha256_file(self.weights),
            self.demo,
            self.source,
            self.revision,
            self.checks_mugs,
        )


@dataclass(frozen=True)
class ModelSearch:
    """Where to look for one model: its entry in ``MODEL_DIR`` and its repository in the cache."""

    model_dir: Path
    entry: str  # YOLO_WEIGHTS (a file) or CLIP_MODEL (a folder), relative to MODEL_DIR
    cache_root: Path | None  # HF_HUB_CACHE; None when there is none
    repo_id: str  # YOLO_MODEL_ID or CLIP_MODEL_ID


def hf_repo_folder(cache_root: Path, repo_id: str) -> Path:
    """``models--<org>--<name>``, as huggingface_hub names a model repository's cache folder.

    RunPod's cache has been seen with lower-cased folder names (worker-vllm#310), so a folder
    that differs only in case is taken when the exact one is not there.
    """
    exact = cache_root / ("models--" + repo_id.replace("/", "--"))
    if exact.is_dir() or not cache_root.is_dir():
        return exact
    folded = [path for path in cache_root.iterdir() if path.name.lower() == exact.name.lower()]
    return folded[0] if len(folded) == 1 else exact


def hf_snapshot(cache_root: Path, repo_id: str) -> tuple[Path, str]:
    """The snapshot ``refs/main`` names, else the only one; ``FileNotFoundError`` says why not."""
    repo = hf_repo_folder(cache_root, repo_id)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        raise FileNotFoundError(f"{repo}: no snapshots")
    ref = repo / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text().strip()
        if revision and (snapshots / revision).is_dir():
            return snapshots / revision, revision
    found = sorted(path for path in snapshots.iterdir() if path.is_dir())
    if len(found) == 1:
        return found[0], found[0].name
    if not found:
        raise FileNotFoundError(f"{snapshots}: empty")
    raise FileNotFoundError(f"{snapshots}: {len(found)} snapshots and no refs/main naming one")


def locate_detector(search: ModelSearch) -> Located:
    """The YOLO checkpoint: ``MODEL_DIR/YOLO_WEIGHTS``, else that file in the cached repository."""
    own = (search.model_dir / search.entry).absolute()
    name = Path(search.entry).name  # YOLO_WEIGHTS, looked for at the repository's top

    def in_snapshot(snapshot: Path) -> tuple[Path, Path, str] | str:
        weights = snapshot / name
        if weights.is_file():
            return weights, weights, f"{search.repo_id}/{name}"
        return f"{weights}: no such file"

    return _locate(search, "detector weights", own, own, in_snapshot)


def locate_clip(search: ModelSearch) -> Located:
    """CLIP's folder: ``MODEL_DIR/CLIP_MODEL`` (safetensors), else the cached repository's snapshot."""
    folder = (search.model_dir / search.entry).absolute()

    def in_snapshot(snapshot: Path) -> tuple[Path, Path, str] | str:
        for name in CLIP_WEIGHT_FILES:
            if (snapshot / name).is_file():
                return snapshot, snapshot / name, search.repo_id
        return f"{snapshot}: no {' or '.join(CLIP_WEIGHT_FILES)}"

    return _locate(search, "CLIP weights", folder, folder / CLIP_WEIGHTS, in_snapshot)


def _locate(
    search: ModelSearch,
    what: str,
    own_path: Path,
    own_weights: Path,
    in_snapshot: Callable[[Path], tuple[Path, Path, str] | str],
) -> Located:
    """MODEL_DIR's copy, else the cache's (``in_snapshot``: its path, weights and name, or why
    not); ``ModelNotFound`` lists both places otherwise."""
    if own_weights.is_file():
        return _from_model_dir(search, own_path, own_weights)
    places = [f"MODEL_DIR ({own_weights}: no such file)"]
    if search.cache_root is None:
        places.append("the Hugging Face cache (HF_HUB_CACHE is not set and none is mounted)")
        raise ModelNotFound(what, places)
    cache = f"the Hugging Face cache for {search.repo_id}"
    try:
        snapshot, revision = hf_snapshot(search.cache_root, search.repo_id)
    except FileNotFoundError as why:
        raise ModelNotFound(what, [*places, f"{cache} ({why})"]) from None
    found = in_snapshot(snapshot)
    if isinstance(found, str):
        raise ModelNotFound(what, [*places, f"{cache} ({found})"])
    path, weights, name = found
    return Located("hf_cache", path, weights, name, False, revision)


def _from_model_dir(search: ModelSearch, path: Path, weights: Path) -> Located:
    """A model of the folder: its name and flags come from the folder's manifest (a demo model
    that does not say it checks mugs is taken not to: the random-weight CLIP of older folders)."""
    meta = read_manifest(search.model_dir).get(search.entry, {})
    name = str(meta.get("name", Path(search.entry).stem))
    demo = bool(meta.get("demo", False))
    checks = bool(meta.get("checks_mugs", not demo))
    return Located("model_dir", path, weights, name, demo, checks_mugs=checks)
