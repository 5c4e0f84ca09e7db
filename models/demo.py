"""Demo models built offline in seconds, in the production layout, marked ``demo`` in the manifest.

The detector is a YOLOv8n the project trained itself on generated desk scenes (no pretrained
weights can be downloaded where it is built; ``python -m scripts.train_detector --ship``), then
fine-tuned on composites of generated objects on real photos and on the photos alone
(``scripts.composite_set``); the file is in ``models/weights``, its training record beside it. It
knows the COCO class names and finds mugs, laptops, keyboards, phones and books on desks like those
of ``training/synthetic``, and seldom a cup on a photo without one; real mugs are another matter.
CLIP is a small ``CLIPModel`` the project trained too
(``python -m scripts.train_demo_clip``: crops of generated scenes and of real photos without mugs,
captioned with the worker's own prompts), with the real CLIP BPE tokenizer (its merges file ships
inside the ``open_clip`` package); so the mug check decides offline as it does in production.
Both load through the same code path as the production weights.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from models.layout import CLIP_WEIGHTS, install_file, record_model, sha256_file

CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT = 77
DEMO_DETECTOR = Path(__file__).with_name("weights") / "desk-detector-yolov8n.pt"
DEMO_DETECTOR_RECORD = DEMO_DETECTOR.with_suffix(".train.json")
# the demo CLIP trained by scripts/train_demo_clip.py: weights, config and its training record
DEMO_CLIP_WEIGHTS = Path(__file__).with_name("weights") / "demo-clip"
# the detector settings the demo job asks for, where the README figures were measured: test-time
# augmentation (flips and smaller scales) finds the mugs the single pass misses, so the
# confidence can stay high enough to keep look-alikes out
DEMO_IMGSZ = 384
DEMO_CONF = 0.45
DEMO_AUGMENT = True


def build_demo_detector(dest: Path, entry: str = "yolov8s.pt") -> Path:
    """Install the detector trained on generated desks (``models/weights``) under ``entry``.

    The file keeps the worker's YOLO_WEIGHTS name so nothing needs configuring; the manifest says
    what it really is (YOLOv8n, trained by scripts/train_detector.py) and marks it ``demo``.
    """
    record = json.loads(DEMO_DETECTOR_RECORD.read_text())
    if not DEMO_DETECTOR.is_file() or sha256_file(DEMO_DETECTOR) != record["sha256"]:
        raise RuntimeError(
            f"{DEMO_DETECTOR} is missing or is not the file {DEMO_DETECTOR_RECORD.name} describes "
            "(a partial checkout?); python -m scripts.train_detector --ship trains a new one"
        )
    dest.mkdir(parents=True, exist_ok=True)
    path = install_file(DEMO_DETECTOR, dest, entry)
    record_model(
        dest,
        entry,
        name=record["name"],
        demo=True,
        source=(
            f"models/weights/{DEMO_DETECTOR.name}: {record['source']} "
            f"(val mAP50 {record['val']['mAP50']})"
        ),
    )
    return path


def build_demo_clip(dest: Path, entry: str = "clip-vit-base-patch32") -> Path:
    """Install the small CLIP trained on generated desks and real negatives (``models/weights``)
    under ``entry``, with the real 49408-token tokenizer and a processor at its input size."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor

    record_file = DEMO_CLIP_WEIGHTS / "train.json"
    if not (DEMO_CLIP_WEIGHTS / CLIP_WEIGHTS).is_file() or not record_file.is_file():
        raise RuntimeError(
            f"{DEMO_CLIP_WEIGHTS} is missing its weights or train.json (a partial checkout?); "
            "python -m scripts.train_demo_clip trains a new one"
        )
    record = json.loads(record_file.read_text())
    folder = dest / entry
    # transformers' hint for from_pretrained's result is loose; it is a CLIPModel
    model: Any = CLIPModel.from_pretrained(str(DEMO_CLIP_WEIGHTS), local_files_only=True)
    model.save_pretrained(str(folder))
    size = int(model.config.vision_config.image_size)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(
        str(folder)
    )
    held_out = record["held_out"]
    record_model(
        dest,
        entry,
        name=record["name"],
        demo=True,
        checks_mugs=True,
        source=(
            f"models/weights/{DEMO_CLIP_WEIGHTS.name}: scripts/train_demo_clip.py, "
            f"{record['steps']} steps (held-out mug-vs-not accuracy {held_out['accuracy']})"
        ),
    )
    return folder


def build_demo_models(dest: Path, yolo_entry: str, clip_entry: str) -> None:
    build_demo_detector(dest, yolo_entry)
    build_demo_clip(dest, clip_entry)


def clip_tokenizer() -> object:
    """The CLIP BPE tokenizer built from open_clip's merges file (same ids as openai's CLIP)."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab()
    # transformers' hint says str | list[str]; the tokenizer takes the (left, right) pairs too
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_CONTEXT)  # type: ignore[arg-type]


@cache
def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the open-clip-torch package (source of the CLIP BPE merges) is missing")
    merges_file = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(merges_file.read_bytes()).decode("utf-8").split("\n")
    merge_count = CLIP_VOCAB_SIZE - 2 * 256 - 2
    merges = [
        (left, right) for left, right in (line.split() for line in lines[1 : merge_count + 1])
    ]
    symbols = list(_byte_symbols().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def _byte_symbols() -> dict[int, str]:
    """Byte-level BPE's printable stand-in for each of the 256 byte values (GPT-2's scheme)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return symbols
