"""scripts/fetch_models.py: the demo build, and the production download with its sources faked."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from models.layout import read_manifest
from scripts import fetch_models

pytestmark = pytest.mark.slow


def test_demo_models_are_written_in_the_production_layout(demo_model_dir: Path) -> None:
    assert (demo_model_dir / "yolov8s.pt").is_file()
    assert (demo_model_dir / "clip-vit-base-patch32" / "model.safetensors").is_file()
    manifest = read_manifest(demo_model_dir)
    assert manifest["yolov8s.pt"]["demo"] is True
    assert manifest["clip-vit-base-patch32"]["demo"] is True


def test_production_fetch_downloads_into_the_same_layout(
    demo_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network is faked with the demo files: this checks paths, conversion and the manifest."""
    requested: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        requested.append(url)
        return io.BytesIO((demo_model_dir / "yolov8s.pt").read_bytes())

    def fake_snapshot(repo: str, local_dir: Path, allow_patterns: list[str]) -> None:
        requested.append(f"hf:{repo}:{','.join(allow_patterns)}")
        shutil.copytree(demo_model_dir / "clip-vit-base-patch32", local_dir, dirs_exist_ok=True)

    monkeypatch.setattr(fetch_models.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot)
    assert fetch_models.main(["--dest", str(tmp_path)]) == 0
    assert requested[0].endswith("/yolov8s.pt") and requested[0].startswith("https://github.com/")
    assert requested[1].startswith("hf:openai/clip-vit-base-patch32:")
    manifest = json.loads((tmp_path / "manifest.json").read_text())["models"]
    assert manifest["yolov8s.pt"] == {
        "name": "yolov8s",
        "demo": False,
        "source": fetch_models.YOLO_RELEASE.format(name="yolov8s.pt"),
    }
    assert manifest["clip-vit-base-patch32"]["name"] == "openai/clip-vit-base-patch32"
    assert manifest["clip-vit-base-patch32"]["demo"] is False
    assert (tmp_path / "clip-vit-base-patch32" / "model.safetensors").is_file()


def test_only_the_detector_for_an_endpoint_that_caches_clip(
    demo_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RunPod caches one model per endpoint: CLIP there, the detector baked (BAKE_ONLY)."""
    monkeypatch.setattr(
        fetch_models.urllib.request,
        "urlopen",
        lambda url, timeout: io.BytesIO((demo_model_dir / "yolov8s.pt").read_bytes()),
    )

    def no_hub(*args: object, **kwargs: object) -> None:
        raise AssertionError("CLIP was downloaded")

    monkeypatch.setattr("huggingface_hub.snapshot_download", no_hub)
    assert fetch_models.main(["--dest", str(tmp_path), "--only", "detector"]) == 0
    assert sorted(read_manifest(tmp_path)) == ["yolov8s.pt"]
    assert not (tmp_path / "clip-vit-base-patch32").exists()
