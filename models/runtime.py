"""Process-wide set-up the model libraries need before they are imported, and device choice."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

OFFLINE_FLAGS = {
    "YOLO_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def prepare_offline(runtime_dir: Path) -> None:
    """Keep ultralytics, transformers and matplotlib off the network and inside ``runtime_dir``.

    Must run before the first import of ultralytics or transformers: both read these at import.
    A ``runtime_dir`` that cannot be made (a read-only or full DATA_DIR) is replaced by a
    temporary folder: those are the libraries' own settings, not the worker's data.
    """
    os.environ.update(OFFLINE_FLAGS)
    try:
        runtime_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        runtime_dir = Path(tempfile.mkdtemp(prefix="mugpos-runtime-"))
    for variable, sub in (
        ("YOLO_CONFIG_DIR", "ultralytics"),
        ("MPLCONFIGDIR", "matplotlib"),
        ("HF_HOME", "huggingface"),
        ("TORCHINDUCTOR_CACHE_DIR", "torchinductor"),
    ):
        path = runtime_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(variable, str(path))


@dataclass(frozen=True)
class Device:
    """Where the models run and in which precision."""

    name: str
    half: bool
    threads: int

    @property
    def dtype(self) -> str:
        return "float16" if self.half else "float32"


def choose_device(device: str, half: str, threads: int | None) -> Device:
    """``DEVICE=auto`` takes CUDA when present; ``HALF=auto`` means fp16 exactly when on CUDA."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but no CUDA device is available")
    name = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    use_half = name == "cuda" if half == "auto" else half == "true"
    if use_half and name == "cpu":
        raise RuntimeError(
            "HALF=true needs DEVICE=cuda: fp16 inference is not supported on the CPU"
        )
    wanted_threads = threads or torch.get_num_threads()
    torch.set_num_threads(wanted_threads)
    return Device(name=name, half=use_half, threads=wanted_threads)
