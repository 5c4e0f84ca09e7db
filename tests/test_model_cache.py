"""Models from RunPod's model cache (SPEC 8): the Hugging Face hub cache layout, MODEL_DIR first."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from models.locate import ModelNotFound, ModelSearch, hf_snapshot, locate_clip, locate_detector
from worker.actions import Worker
from worker.runtime import load_models, open_stores
from worker.settings import Settings, default_hf_cache, default_model_dir

REVISION = "8a9e1a55f6e4b2c1d0e9f8a7b6c5d4e3f2a1b0c9"


def cache_repo(cache: Path, repo_id: str, files: dict[str, Path], revision: str = REVISION) -> Path:
    """A repository laid out as huggingface_hub (and so RunPod's model cache) lays it out: files
    in blobs/ named by their sha256, the snapshot's entries symlinks into them, refs/main holding
    the commit (no newline, as the hub writes it)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / revision
    for name, source in files.items():
        blob = repo / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        shutil.copyfile(source, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs" / "main").write_text(revision)
    return snapshot


@pytest.fixture(scope="module")
def hf_cache(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo models as RunPod would cache Ultralytics/YOLOv8 and openai/clip-vit-base-patch32."""
    cache = tmp_path_factory.mktemp("huggingface-cache") / "hub"
    cache_repo(cache, "Ultralytics/YOLOv8", {"yolov8s.pt": demo_model_dir / "yolov8s.pt"})
    clip = demo_model_dir / "clip-vit-base-patch32"
    cache_repo(
        cache,
        "openai/clip-vit-base-patch32",
        {path.name: path for path in clip.iterdir() if path.is_file()},
    )
    return cache


def search(tmp_path: Path, cache: Path | None, entry: str, repo: str) -> ModelSearch:
    return ModelSearch(tmp_path / "empty-model-dir", entry, cache, repo)


@pytest.mark.slow
def test_analyze_runs_on_cached_models_and_says_so(
    hf_cache: Path, tmp_path: Path, desk_b64: str
) -> None:
    settings = Settings(
        model_dir=tmp_path / "empty", hf_hub_cache=hf_cache, data_dir=tmp_path, warmup_imgsz=64
    )
    models = load_models(settings)
    app = Worker(settings, models, open_stores(settings))

    result = app.handle({"id": "c1", "input": {"image": desk_b64, "options": {"imgsz": 320}}})

    assert "error" not in result, result
    detector, clip = result["models"]["detector"], result["models"]["clip"]
    assert (detector["source"], clip["source"]) == ("hf_cache", "hf_cache")
    assert (detector["revision"], clip["revision"]) == (REVISION, REVISION)
    assert detector["name"] == "Ultralytics/YOLOv8/yolov8s.pt"
    assert clip["name"] == "openai/clip-vit-base-patch32"
    health = app.handle({"id": "h", "input": {"action": "health"}})
    assert health["models"]["detector"]["source"] == "hf_cache"


@pytest.mark.slow
def test_without_either_place_health_lists_both(tmp_path: Path, desk_b64: str) -> None:
    cache = tmp_path / "hub"
    cache.mkdir()
    settings = Settings(model_dir=tmp_path / "empty", hf_hub_cache=cache, data_dir=tmp_path)
    app = Worker(settings, load_models(settings), open_stores(settings))

    health = app.handle({"id": "h", "input": {"action": "health"}})

    assert health["status"] == "degraded"
    for name, repo in (
        ("detector", "Ultralytics/YOLOv8"),
        ("clip", "openai/clip-vit-base-patch32"),
    ):
        model = health["models"][name]
        assert model["loaded"] is False
        model_dir, hub = model["looked_in"]
        assert model_dir.startswith("MODEL_DIR (") and str(tmp_path / "empty") in model_dir
        assert f"the Hugging Face cache for {repo}" in hub and str(cache) in hub
    answer = app.handle({"id": "a", "input": {"image": desk_b64}})
    assert answer["error"].startswith("model_unavailable: detector weights not found: looked in")
    assert "attach Ultralytics/YOLOv8 to the endpoint as a cached model" in answer["error"]


def test_model_dir_comes_first(demo_model_dir: Path, hf_cache: Path) -> None:
    found = locate_detector(
        ModelSearch(demo_model_dir, "yolov8s.pt", hf_cache, "Ultralytics/YOLOv8")
    )
    assert (found.source, found.path) == ("model_dir", demo_model_dir / "yolov8s.pt")
    assert found.demo is True  # the folder's manifest says so


def test_each_model_is_looked_for_on_its_own(
    tmp_path: Path, demo_model_dir: Path, hf_cache: Path
) -> None:
    """A volume with only the detector, CLIP attached as a cached model."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(demo_model_dir / "yolov8s.pt", folder / "yolov8s.pt")
    detector = locate_detector(ModelSearch(folder, "yolov8s.pt", hf_cache, "Ultralytics/YOLOv8"))
    clip = locate_clip(
        ModelSearch(folder, "clip-vit-base-patch32", hf_cache, "openai/clip-vit-base-patch32")
    )
    assert (detector.source, clip.source) == ("model_dir", "hf_cache")
    assert clip.weights.name == "model.safetensors" and clip.weights.is_file()


def test_a_cached_clip_with_only_the_pytorch_bin_is_taken(tmp_path: Path) -> None:
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(b"weights")
    cache_repo(tmp_path / "hub", "openai/clip-vit-base-patch32", {"pytorch_model.bin": weights})
    found = locate_clip(
        search(tmp_path, tmp_path / "hub", "clip-vit-base-patch32", "openai/clip-vit-base-patch32")
    )
    assert found.weights.name == "pytorch_model.bin"


def test_refs_main_names_the_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "w.pt"
    source.write_bytes(b"old")
    cache_repo(tmp_path / "hub", "Ultralytics/YOLOv8", {"yolov8s.pt": source}, revision="a" * 40)
    source.write_bytes(b"new")
    cache_repo(tmp_path / "hub", "Ultralytics/YOLOv8", {"yolov8s.pt": source}, revision="b" * 40)
    snapshot, revision = hf_snapshot(tmp_path / "hub", "Ultralytics/YOLOv8")
    assert revision == "b" * 40 and (snapshot / "yolov8s.pt").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("snapshots", "ref", "outcome"),
    [
        (["c" * 40], None, "c" * 40),  # no refs/main: the only snapshot
        (["c" * 40], "f" * 40, "c" * 40),  # refs/main names a snapshot that is not there
        (["c" * 40, "d" * 40], None, "2 snapshots and no refs/main"),
        ([], None, "empty"),
    ],
)
def test_snapshot_without_a_usable_ref(
    tmp_path: Path, snapshots: list[str], ref: str | None, outcome: str
) -> None:
    repo = tmp_path / "models--Ultralytics--YOLOv8"
    for name in snapshots:
        (repo / "snapshots" / name).mkdir(parents=True)
    (repo / "snapshots").mkdir(parents=True, exist_ok=True)
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(ref)
    if len(outcome) == 40:
        assert hf_snapshot(tmp_path, "Ultralytics/YOLOv8")[1] == outcome
    else:
        with pytest.raises(FileNotFoundError, match=outcome):
            hf_snapshot(tmp_path, "Ultralytics/YOLOv8")


def test_a_lower_cased_cache_folder_is_found(tmp_path: Path) -> None:
    """RunPod's cache has been seen writing models--ultralytics--yolov8 (worker-vllm#310)."""
    source = tmp_path / "w.pt"
    source.write_bytes(b"w")
    cache_repo(tmp_path / "hub", "ultralytics/yolov8", {"yolov8s.pt": source})
    found = locate_detector(search(tmp_path, tmp_path / "hub", "yolov8s.pt", "Ultralytics/YOLOv8"))
    assert found.source == "hf_cache"


def test_no_cache_at_all_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as missing:
        locate_detector(search(tmp_path, None, "yolov8s.pt", "Ultralytics/YOLOv8"))
    assert missing.value.places[1] == (
        "the Hugging Face cache (HF_HUB_CACHE is not set and none is mounted)"
    )


@pytest.mark.slow
def test_a_model_that_fails_to_load_leaves_the_worker_up_and_says_why(
    hf_cache: Path, tmp_path: Path, desk_b64: str
) -> None:
    """A cached CLIP without its processor files: the worker starts, degraded, naming the path."""
    broken = tmp_path / "hub"
    shutil.copytree(hf_cache, broken, symlinks=True)
    snapshot = broken / "models--openai--clip-vit-base-patch32" / "snapshots" / REVISION
    for name in ("tokenizer.json", "vocab.json", "preprocessor_config.json", "config.json"):
        (snapshot / name).unlink(missing_ok=True)
    settings = Settings(
        model_dir=tmp_path / "empty", hf_hub_cache=broken, data_dir=tmp_path, warmup_imgsz=64
    )
    app = Worker(settings, load_models(settings), open_stores(settings))

    health = app.handle({"id": "h", "input": {"action": "health"}})
    assert health["status"] == "degraded" and health["models"]["detector"]["loaded"] is True
    assert str(snapshot) in health["models"]["clip"]["problem"]
    answer = app.handle({"id": "a", "input": {"image": desk_b64, "options": {"clip": False}}})
    assert "error" not in answer


def test_an_empty_variable_is_unset_not_the_current_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A blank field in RunPod's form arrives as an empty variable."""
    monkeypatch.setenv("MODEL_DIR", "")
    monkeypatch.setenv("HF_HUB_CACHE", "")
    settings = Settings()
    assert settings.model_dir == default_model_dir()
    assert settings.hf_hub_cache == default_hf_cache()


@pytest.mark.slow
def test_a_cache_hit_says_where_this_workers_models_came_from(
    hf_cache: Path, demo_models, tmp_path: Path, desk_b64: str, make_worker
) -> None:
    """The result cache is shared (Redis): a hit from a worker that loaded the same weights from
    MODEL_DIR still names this worker's source."""
    first = make_worker()
    settings = Settings(
        model_dir=tmp_path / "empty", hf_hub_cache=hf_cache, data_dir=tmp_path, warmup_imgsz=64
    )
    stores = dataclasses.replace(open_stores(settings), cache=first.stores.cache)
    second = Worker(settings, load_models(settings), stores)
    job = {"image": desk_b64, "options": {"imgsz": 320, "clip": False}}

    one = first.handle({"id": "a", "input": job})
    two = second.handle({"id": "b", "input": job})

    assert two["persisted"]["cache"] == "hit"
    assert one["models"]["detector"]["source"] == "model_dir"
    assert two["models"]["detector"]["source"] == "hf_cache"
