"""Configuration from the environment: defaults, parsing, and a clear error for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.settings import ConfigError, load_settings


@pytest.mark.usefixtures("clean_env")
def test_defaults_follow_the_spec() -> None:
    settings = load_settings()
    assert settings.yolo_weights == "yolov8s.pt"
    assert settings.clip_model == "clip-vit-base-patch32"
    assert settings.data_dir == Path("data")
    assert settings.mug_classes == ("cup", "mug")
    assert settings.reference_sizes_mm == {"laptop": 310, "keyboard": 440, "cup": 120}
    assert settings.max_image_bytes == 20 * 1024 * 1024
    assert settings.max_image_pixels == 50_000_000
    assert settings.max_batch == 64
    assert settings.allow_private_urls is False
    assert (settings.device, settings.half) == ("auto", "auto")


@pytest.mark.usefixtures("clean_env")
def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/models")
    monkeypatch.setenv("MUG_CLASSES", "Cup, mug ,tumbler")
    monkeypatch.setenv("REFERENCE_SIZES_MM", "laptop:300,book:200")
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("TORCH_THREADS", "4")
    settings = load_settings()
    assert settings.model_dir == Path("/models")
    assert settings.mug_classes == ("cup", "mug", "tumbler")
    assert settings.reference_sizes_mm == {"laptop": 300, "book": 200}
    assert settings.allow_private_urls is True
    assert settings.torch_threads == 4


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEVICE", "tpu", "DEVICE: Input should be 'auto', 'cpu' or 'cuda'"),
        ("MAX_BATCH", "0", "MAX_BATCH: Input should be greater than or equal to 1"),
        (
            "REFERENCE_SIZES_MM",
            "laptop=310",
            "REFERENCE_SIZES_MM: Value error, expected 'class:mm'",
        ),
        ("MUG_CLASSES", " , ", "MUG_CLASSES: Value error, expected a comma-separated list"),
        ("MUG_SCORE_MIN", "2", "MUG_SCORE_MIN: Input should be less than or equal to 1"),
        # the warm-up runs the detector's own options: no bigger than a job may ask for
        ("WARMUP_IMGSZ", "4096", "WARMUP_IMGSZ: Input should be less than or equal to 2048"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        load_settings()
    assert message in str(raised.value)
