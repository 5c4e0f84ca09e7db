"""Demo models built offline in seconds, in the production layout, marked ``demo`` in the manifest.

The detector is a YOLOv8n the project trained itself on generated desk scenes (no pretrained
weights can be downloaded where it is built; ``python -m scripts.train_detector --ship`` made the
file in ``models/weights``, its training record beside it). It knows the COCO class names and finds
mugs, laptops, keyboards, phones and books on desks like those of ``training/synthetic``; photos
are another matter. CLIP is a small random-weight model with the real CLIP BPE tokenizer (its
merges file ships inside the ``open_clip`` package). Both load through the same code path as the
production weights.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from models.layout import install_file, record_model, sha256_file

CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT = 77
DEMO_SEED = 0
DEMO_DETECTOR = Path(__file__).with_name("weights") / "desk-detector-yolov8n.pt"
DEMO_DETECTOR_RECORD = DEMO_DETECTOR.with_suffix(".train.json")
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
    """A small random-weight CLIP (2 layers, width 64) with the real 49408-token tokenizer."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    torch.manual_seed(DEMO_SEED)
    small: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
    config = CLIPConfig(
        text_config=CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE,
            max_position_embeddings=CLIP_CONTEXT,
            num_attention_heads=2,
            **small,
        ).to_dict(),
        vision_config=CLIPVisionConfig(
            image_size=224, patch_size=32, num_attention_heads=2, **small
        ).to_dict(),
        projection_dim=64,
    )
    folder = dest / entry
    CLIPModel(config).save_pretrained(str(folder))
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(
        str(folder)
    )
    record_model(
        dest,
        entry,
        name="clip-tiny (demo: random weights)",
        demo=True,
        source=f"transformers CLIPConfig width 64, 2 layers, random init, seed {DEMO_SEED}",
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
