"""Generated desk objects pasted onto real photos, and real photos alone: the detector's real negatives.

A generated scene is drawn twice, with its things and without them (``training.synthetic.render``
draws the rest pixel for pixel alike), and where the two pictures differ is every object with its
shadow. That layer, scaled by a random factor, is pasted at a random place on a real photo
without mugs (``training.demo_clip.REAL_NEGATIVES``, Debian's opencv-doc pictures), its labels
moved along; each photo also goes in alone, as a background image with no labels, so the detector
learns that a face, coins or a cat hold no cup. The photos the worker is measured on
(``training.real_photos``) are never used.

The set is a YOLO folder (images/train, images/val, labels/ beside) for
``python -m scripts.train_detector --data``, which fine-tunes the demo detector on it together
with generated scenes written into the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from training.demo_clip import OPENCV_DATA, TRAIN_NEGATIVES, VAL_NEGATIVES
from training.synthetic.render import convex_hull
from training.synthetic.scenes import compose, generate_scene, labels_of, render
from training.synthetic.truth import LabelBox
from worker.annotate import encode_jpeg

TABLE_CLASS = "dining table"
# what the set's folder says of itself (and how scripts.train_detector knows the set is ours)
COMPOSITES_RECORD = "composites.json"
# a pixel belongs to the object layer when the two drawings differ by more than this (summed RGB)
LAYER_THRESHOLD = 30


@dataclass(frozen=True)
class Layer:
    """The objects of one generated scene, cut out (RGBA), the shadows they cast (L: the factor
    by which each pixel of what lies beneath darkens, 255 = not at all), and their labels, all in
    the layer's pixels."""

    image: Image.Image
    shade: Image.Image
    labels: list[LabelBox]


def object_layer(seed: int, index: int) -> Layer | None:
    """Scene ``index`` of ``seed`` without its table: None when it holds no labelled object.

    What changed inside a thing's silhouette (the hull of its outline, as the camera sees it) is
    the thing, pasted as drawn; what changed outside every silhouette is a shadow, which darkens
    what lies beneath by the factor it darkened the table (a cable counts as a shadow: a thin
    dark line either way).
    """
    composition = compose(seed, index)
    full, _ = render(composition)
    empty, _ = render(composition, things=[])
    drawn = np.asarray(full, dtype=np.float32)
    bare = np.asarray(empty, dtype=np.float32)
    changed = np.abs(drawn - bare).sum(axis=2) > LAYER_THRESHOLD
    silhouettes = Image.new("L", full.size, 0)
    pen = ImageDraw.Draw(silhouettes)
    camera = composition.setting.camera
    for thing in composition.things:
        if thing.kind != "cable":
            hull = convex_hull(camera.project(thing.outline()))
            pen.polygon([(float(x), float(y)) for x, y in hull], fill=255)
    inside = np.asarray(silhouettes) > 0
    darkening = np.clip((drawn + 1.0) / (bare + 1.0), 0.0, 1.0).mean(axis=2)
    factor = np.where(changed & ~inside, darkening, 1.0)
    labels = [label for label in labels_of(composition) if label.class_name != TABLE_CLASS]
    box = Image.fromarray((changed * 255).astype(np.uint8)).getbbox()
    if not labels or box is None:
        return None
    left, top, right, bottom = box
    for label in labels:
        x1, y1, x2, y2 = label.box
        left, top = min(left, int(x1)), min(top, int(y1))
        right, bottom = max(right, int(np.ceil(x2))), max(bottom, int(np.ceil(y2)))
    layer = full.convert("RGBA")
    layer.putalpha(Image.fromarray(((changed & inside) * 255).astype(np.uint8)))
    shade = Image.fromarray((factor * 255).astype(np.uint8))
    moved = [
        LabelBox(label.class_name, (x1 - left, y1 - top, x2 - left, y2 - top))
        for label in labels
        for x1, y1, x2, y2 in [label.box]
    ]
    crop = (left, top, right, bottom)
    return Layer(layer.crop(crop), shade.crop(crop), moved)


def paste(
    photo: Image.Image, layer: Layer, rng: np.random.Generator
) -> tuple[Image.Image, list[LabelBox]]:
    """The layer scaled to 40-95 % of the photo's size (never larger) at a random place on it:
    the photo darkened under the shadows, the objects drawn over it."""
    width, height = photo.size
    fit = min(width / layer.image.width, height / layer.image.height)
    scale = fit * float(rng.uniform(0.4, 0.95))
    size = (max(1, round(layer.image.width * scale)), max(1, round(layer.image.height * scale)))
    scaled = layer.image.resize(size, Image.Resampling.LANCZOS)
    shade = np.asarray(layer.shade.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    x = int(rng.integers(0, width - size[0] + 1))
    y = int(rng.integers(0, height - size[1] + 1))
    pixels = np.asarray(photo.convert("RGB"), dtype=np.float32).copy()
    pixels[y : y + size[1], x : x + size[0]] *= shade[..., None] / 255.0
    out = Image.fromarray(pixels.astype(np.uint8))
    out.paste(scaled, (x, y), scaled)
    labels = [
        LabelBox(
            label.class_name,
            (x + x1 * scale, y + y1 * scale, x + x2 * scale, y + y2 * scale),
        )
        for label in layer.labels
        for x1, y1, x2, y2 in [label.box]
    ]
    return out, [label for label in labels if min(_size(label)) >= 4]


def _size(label: LabelBox) -> tuple[float, float]:
    x1, y1, x2, y2 = label.box
    return x2 - x1, y2 - y1


def real_photo(name: str, short_side: int = 480) -> Image.Image | None:
    """A negative photo, enlarged so its short side is at least ``short_side`` (some are 256 px)."""
    path = OPENCV_DATA / name
    if not path.is_file():
        return None
    image = Image.open(path).convert("RGB")
    grow = short_side / min(image.size)
    if grow > 1:
        image = image.resize(
            (round(image.width * grow), round(image.height * grow)), Image.Resampling.BICUBIC
        )
    return image


def _write(folder: Path, split: str, name: str, jpeg: bytes, yolo_labels: str) -> None:
    (folder / "images" / split / f"{name}.jpg").write_bytes(jpeg)
    (folder / "labels" / split / f"{name}.txt").write_text(yolo_labels)


def _yolo_lines(image: Image.Image, labels: Sequence[LabelBox]) -> str:
    return "".join(label.yolo_line(image.width, image.height) + "\n" for label in labels)


def write_composite_set(
    folder: Path,
    *,
    scenes: dict[str, tuple[int, int]],
    composites: dict[str, tuple[int, int]],
    photo_copies: int,
    seed: int,
) -> dict[str, Any]:
    """Write the fine-tuning set: per split, generated scenes (``scenes[split]``: seed, count),
    composites (``composites[split]``: layer seed, count) on that split's photos, and each of its
    photos alone ``photo_copies`` times (mirrored and cropped at random). Three photos in four
    train, the rest validate (as for the demo CLIP). Returns what to record about it."""
    photos = {"train": list(TRAIN_NEGATIVES), "val": list(VAL_NEGATIVES)}
    summary: dict[str, Any] = {"photos": photos, "source": str(OPENCV_DATA)}
    for split in ("train", "val"):
        for sub in ("images", "labels"):
            (folder / sub / split).mkdir(parents=True, exist_ok=True)
        scene_seed, scene_count = scenes[split]
        for index in range(scene_count):  # as training.synthetic.dataset writes them
            scene = generate_scene(scene_seed, index)
            _write(folder, split, f"g{index:06d}", scene.jpeg(), scene.yolo_labels())
        loaded = [image for n in photos[split] if (image := real_photo(n)) is not None]
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        layer_seed, count = composites[split]
        made = index = 0
        while made < count and loaded:
            layer = object_layer(layer_seed, index)
            index += 1
            if layer is None:
                continue
            image, labels = paste(loaded[made % len(loaded)], layer, rng)
            _write(
                folder, split, f"c{made:06d}", encode_jpeg(image, 90), _yolo_lines(image, labels)
            )
            made += 1
        for number, photo in enumerate(loaded):
            for copy in range(photo_copies):
                view = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if copy % 2 else photo
                if copy >= 2:  # a random crop of at least half of each side
                    w, h = view.size
                    cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
                    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                    view = view.crop((x, y, x + cw, y + ch))
                _write(folder, split, f"n{number:03d}-{copy}", encode_jpeg(view, 90), "")
        summary[split] = {
            "scenes": {"seed": scene_seed, "count": scene_count},
            "composites": {"layer_seed": layer_seed, "count": made},
            "photos_alone": len(loaded) * photo_copies,
        }
    (folder / COMPOSITES_RECORD).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
