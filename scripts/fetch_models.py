"""Fill a model folder in the layout the worker reads (see models/layout.py).

    python -m scripts.fetch_models --dest /runpod-volume/models     # production weights (internet)
    python -m scripts.fetch_models --demo --dest volume/models       # demo models, offline, seconds

Production: YOLOv8 ``yolov8s.pt`` from ultralytics' release assets and ``openai/clip-vit-base-patch32``
from the Hugging Face hub, kept as safetensors. Demo (models/demo.py): the YOLOv8n this repository
trained on generated desks (models/weights) and a small random-weight CLIP, marked ``demo`` in
manifest.json so every result says so.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import urllib.request
from pathlib import Path

from models.layout import CLIP_WEIGHTS, record_model

YOLO_RELEASE = "https://github.com/ultralytics/assets/releases/download/v8.3.0/{name}"
CLIP_REPO = "openai/clip-vit-base-patch32"
CLIP_FILES = ["*.json", "*.txt", CLIP_WEIGHTS]


def fetch_detector(dest: Path, entry: str) -> None:
    """Download the ultralytics checkpoint and check that it loads as a detector."""
    target = dest / entry
    if target.exists():
        print(f"{target} already present")
    else:
        url = YOLO_RELEASE.format(name=entry)
        print(f"downloading {url}")
        with (
            tempfile.NamedTemporaryFile(dir=dest, delete=False) as partial,
            urllib.request.urlopen(url, timeout=60) as response,
        ):
            shutil.copyfileobj(response, partial)
        Path(partial.name).replace(target)
    from ultralytics import YOLO

    YOLO(str(target.absolute()), task="detect")
    record_model(
        dest, entry, name=Path(entry).stem, demo=False, source=YOLO_RELEASE.format(name=entry)
    )


def fetch_clip(dest: Path, entry: str) -> None:
    """Download CLIP from the hub; convert to safetensors when the hub copy has only a .bin."""
    from huggingface_hub import snapshot_download

    folder = dest / entry
    snapshot_download(CLIP_REPO, local_dir=folder, allow_patterns=CLIP_FILES)
    if not (folder / CLIP_WEIGHTS).exists():
        from transformers import CLIPModel

        snapshot_download(CLIP_REPO, local_dir=folder, allow_patterns=["pytorch_model.bin"])
        CLIPModel.from_pretrained(str(folder)).save_pretrained(str(folder))
        (folder / "pytorch_model.bin").unlink()
    record_model(dest, entry, name=CLIP_REPO, demo=False, source=f"huggingface.co/{CLIP_REPO}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True, help="the model folder (MODEL_DIR)")
    parser.add_argument(
        "--demo", action="store_true", help="install the demo models (offline) instead"
    )
    parser.add_argument("--yolo-weights", default="yolov8s.pt", help="file name (YOLO_WEIGHTS)")
    parser.add_argument("--clip-model", default="clip-vit-base-patch32", help="folder (CLIP_MODEL)")
    parser.add_argument(
        "--only",
        choices=["all", "detector", "clip"],
        default="all",
        help="production weights of one model only (detector: CLIP comes from RunPod's model cache)",
    )
    args = parser.parse_args(argv)
    dest: Path = args.dest.absolute()
    dest.mkdir(parents=True, exist_ok=True)

    if args.demo:
        from models.demo import build_demo_models
        from models.runtime import prepare_offline

        with tempfile.TemporaryDirectory() as runtime:
            prepare_offline(Path(runtime))
            build_demo_models(dest, args.yolo_weights, args.clip_model)
    else:
        if args.only in ("all", "detector"):
            fetch_detector(dest, args.yolo_weights)
        if args.only in ("all", "clip"):
            fetch_clip(dest, args.clip_model)
    print(f"models ready in {dest}:")
    for path in sorted(dest.iterdir()):
        if not path.name.startswith("."):
            print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
