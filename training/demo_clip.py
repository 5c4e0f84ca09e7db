"""The demo CLIP, trained: a small ``CLIPModel`` that tells a mug from what a detector mistakes for one.

The images are those the worker hands CLIP: crops (``models.clip.crop_for_clip``) of every object
and distractor of generated scenes, of random stretches of their tables, of the demo detector's own
cup candidates that match no mug (its phantoms), and of random boxes on real photos without mugs
(``REAL_NEGATIVES``); and each whole scene. A crop's caption is one of ``models.clip.MUG_PROMPTS``
(the first is the mug), a scene's one of ``SCENE_LABELS``. The loss is CLIP's contrastive one
against those fixed caption sets: each image's cross-entropy over its set, both towers learning.

Seeds: training scenes ``TRAIN_SEED``, validation ``VAL_SEED`` (the threshold is read there),
held-out crops ``CLIP_HELD_OUT_SEED``, a seed used nowhere else; the real photos of
``training.real_photos`` are never trained on.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from models.clip import MUG_PROMPTS, SCENE_LABELS, crop_for_clip
from positioning.geometry import Box, iou
from training.real_photos import PHOTOS
from training.synthetic.scenes import generate_scene

if TYPE_CHECKING:
    import torch

    from models.detector import Detector

TRAIN_SEED = 1
VAL_SEED = 2
CLIP_HELD_OUT_SEED = 700_001
# the demo detector's confidence when it gathers cup candidates (its phantoms, the mugs it finds):
# well under the demo job's 0.45, so the crops hold more look-alikes than a job ever meets
MINING_CONF = 0.1
MUG, OTHER = 0, len(MUG_PROMPTS) - 1
# what each generated thing is, as one of the mug check's captions (the last: something else)
CAPTION_OF = {
    "cup": 0,
    "mug": 0,
    "bowl": MUG_PROMPTS.index("a photo of a bowl"),
    "plate": MUG_PROMPTS.index("a photo of a plate"),
    "saucer": MUG_PROMPTS.index("a photo of a plate"),
    "laptop": MUG_PROMPTS.index("a photo of a laptop"),
    "keyboard": MUG_PROMPTS.index("a photo of a keyboard"),
    "cell phone": MUG_PROMPTS.index("a photo of a phone"),
    "book": MUG_PROMPTS.index("a photo of a book"),
}
# Real photos without a mug, from Debian's opencv-doc (OpenCV's sample data, BSD/Apache-2.0 per
# /usr/share/doc/opencv-doc/copyright): random boxes on them are "something else".
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
REAL_NEGATIVES = (
    "HappyFish.jpg",
    "aero1.jpg",
    "aero3.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "blox.jpg",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "fruits.jpg",
    "graf1.png",
    "home.jpg",
    "left01.jpg",
    "leuvenA.jpg",
    "messi5.jpg",
    "orange.jpg",
    "pic1.png",
    "pic3.png",
    "pic5.png",
    "rubberwhale1.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "starry_night.jpg",
    "sudoku.png",
)


# three photos in four train, the rest validate (the demo CLIP and the detector's composites alike)
TRAIN_NEGATIVES = tuple(name for i, name in enumerate(REAL_NEGATIVES) if i % 4 != 3)
VAL_NEGATIVES = tuple(name for i, name in enumerate(REAL_NEGATIVES) if i % 4 == 3)


@dataclass(frozen=True)
class Sample:
    """One image and its caption; ``group`` says where it came from (for per-group accuracy)."""

    image: Image.Image
    caption: int
    group: str


@dataclass(frozen=True)
class ClipShape:
    """The demo model's size: small enough to train on two CPU cores and to ship in git."""

    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 96
    vision_layers: int = 4
    text_width: int = 32
    text_layers: int = 1
    projection_dim: int = 64


def _jittered(box: Box, rng: np.random.Generator, width: int, height: int, amount: float) -> Box:
    """The box with each side moved by up to ``amount`` of its size: detector boxes are loose."""
    dx, dy = box.width * amount, box.height * amount
    x1, x2 = box.x1 + rng.uniform(-dx, dx), box.x2 + rng.uniform(-dx, dx)
    y1, y2 = box.y1 + rng.uniform(-dy, dy), box.y2 + rng.uniform(-dy, dy)
    x1, x2 = sorted((min(max(x1, 0.0), width - 2.0), min(max(x2, 2.0), float(width))))
    y1, y2 = sorted((min(max(y1, 0.0), height - 2.0), min(max(y2, 2.0), float(height))))
    return Box(x1, y1, max(x2, x1 + 2.0), max(y2, y1 + 2.0))


def _random_box(
    rng: np.random.Generator, width: int, height: int, low: float = 0.06, high: float = 0.45
) -> Box:
    """A cup-like box (aspect 0.6-1.7) somewhere in the picture, its side ``low``-``high`` of it."""
    side = rng.uniform(low, high) * min(width, height)
    aspect = math.exp(rng.uniform(math.log(0.6), math.log(1.7)))
    w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
    x1, y1 = rng.uniform(0, max(1.0, width - w)), rng.uniform(0, max(1.0, height - h))
    return Box(x1, y1, min(float(width), x1 + w), min(float(height), y1 + h))


def scene_caption(truth: dict[str, Any]) -> int:
    """A scene's label, from what stands on it: the generator draws desks, crowded or not."""
    classes = [o["class"] for o in truth["objects"]]
    if len(classes) + len(truth["distractors"]) >= 7:
        return SCENE_LABELS.index("a cluttered desk")
    if not classes:
        return SCENE_LABELS.index("an empty table")
    if {"laptop", "keyboard"} & set(classes):
        return SCENE_LABELS.index("an office desk")
    return SCENE_LABELS.index("a coffee table")


def mined_cups(detector: Detector, image: Image.Image) -> list[Box]:
    """The detector's cup candidates on one image: the demo settings, but at ``MINING_CONF``."""
    from models.demo import DEMO_AUGMENT, DEMO_IMGSZ
    from models.detector import DetectorOptions

    options = DetectorOptions(imgsz=DEMO_IMGSZ, conf=MINING_CONF, augment=DEMO_AUGMENT)
    return [
        found.box for found in detector.predict([image], options)[0] if found.class_name == "cup"
    ]


def scene_samples(
    seed: int,
    count: int,
    detector: Detector | None = None,
    views: int = 1,
    start: int = 0,
) -> tuple[list[Sample], list[Sample]]:
    """The crops and whole images of generated scenes ``start .. start+count-1`` of ``seed``.

    Each true object and distractor gives ``views`` jittered crops, each table two random boxes
    that overlap nothing; with a detector, each cup candidate is a crop too: a mug where it
    matches a true mug (IoU 0.5), a phantom where it overlaps none (under 0.3); the detector at the
    demo settings but at ``MINING_CONF``, to find more of them.
    """
    crops: list[Sample] = []
    scenes: list[Sample] = []
    for index in range(start, start + count):
        scene = generate_scene(seed, index)
        rng = np.random.default_rng([seed, index, 7])
        image = scene.image
        width, height = image.size
        truth = scene.truth
        things = [(o["class"], Box(*o["box"]), "object") for o in truth["objects"]]
        things += [(d["kind"], Box(*d["box"]), "distractor") for d in truth["distractors"]]
        for kind, box, origin in things:
            caption = CAPTION_OF.get(kind, OTHER)
            if box.width < 4 or box.height < 4:
                continue
            group = "mug" if caption == MUG else origin
            for _ in range(views):
                crops.append(
                    Sample(
                        crop_for_clip(image, _jittered(box, rng, width, height, 0.08)),
                        caption,
                        group,
                    )
                )
        taken = [box for _, box, _ in things]
        for _ in range(2):
            box = _random_box(rng, width, height)
            if all(iou(box, other) < 0.05 for other in taken):
                crops.append(Sample(crop_for_clip(image, box), OTHER, "table"))
        if detector is not None:
            mugs = [box for kind, box, _ in things if CAPTION_OF.get(kind) == MUG]
            for cup in mined_cups(detector, image):
                best = max((iou(cup, mug) for mug in mugs), default=0.0)
                if best >= 0.5:  # the exact box, and the box as loose as another pass draws it
                    crops.append(Sample(crop_for_clip(image, cup), MUG, "detected mug"))
                    loose = _jittered(cup, rng, width, height, 0.05)
                    crops.append(Sample(crop_for_clip(image, loose), MUG, "detected mug"))
                elif best < 0.3:
                    crops.append(Sample(crop_for_clip(image, cup), OTHER, "phantom"))
        scenes.append(Sample(image, scene_caption(truth), "scene"))
    return crops, scenes


def photo_samples(
    names: Sequence[str], per_photo: int, seed: int, detector: Detector | None = None
) -> list[Sample]:
    """Random cup-like boxes (and the detector's cup candidates) on real photos without mugs."""
    samples: list[Sample] = []
    for number, name in enumerate(names):
        path = OPENCV_DATA / name
        if not path.is_file():
            continue
        image = Image.open(path).convert("RGB")
        rng = np.random.default_rng([seed, number])
        for _ in range(per_photo):
            box = _random_box(rng, image.width, image.height, 0.05, 0.7)
            samples.append(Sample(crop_for_clip(image, box), OTHER, "photo"))
        if detector is not None:
            for cup in mined_cups(detector, image):
                samples.append(Sample(crop_for_clip(image, cup), OTHER, "photo phantom"))
    return samples


def pixel_batches(processor: Any, samples: Sequence[Sample], size: int = 256) -> torch.Tensor:
    """The images as CLIP's processor prepares them at inference (resize, centre crop, normalise)."""
    import torch

    parts = [
        processor(images=[s.image for s in samples[i : i + size]], return_tensors="pt")[
            "pixel_values"
        ]
        for i in range(0, len(samples), size)
    ]
    return torch.cat(parts) if parts else torch.zeros((0, 3, 1, 1))


def new_model(shape: ClipShape, seed: int) -> Any:
    """A random ``CLIPModel`` of ``shape`` with the real CLIP vocabulary and context."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    from models.demo import CLIP_CONTEXT, CLIP_VOCAB_SIZE

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE,
            max_position_embeddings=CLIP_CONTEXT,
            hidden_size=shape.text_width,
            intermediate_size=shape.text_width * 2,
            num_hidden_layers=shape.text_layers,
            num_attention_heads=2,
        ).to_dict(),
        vision_config=CLIPVisionConfig(
            image_size=shape.image_size,
            patch_size=shape.patch_size,
            hidden_size=shape.vision_width,
            intermediate_size=shape.vision_width * 4,
            num_hidden_layers=shape.vision_layers,
            num_attention_heads=4,
        ).to_dict(),
        projection_dim=shape.projection_dim,
    )
    return CLIPModel(config)


def _augmented(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half the batch; shift brightness and contrast a little (in normalised units)."""
    import torch

    flip = torch.rand(pixels.shape[0], generator=generator) < 0.5
    out = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
    gain = 1.0 + 0.25 * (torch.rand(pixels.shape[0], 1, 1, 1, generator=generator) - 0.5)
    shift = 0.4 * (torch.rand(pixels.shape[0], 3, 1, 1, generator=generator) - 0.5)
    return out * gain + shift


def _text_features(model: Any, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
    output = model.get_text_features(
        input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
    )
    return output.pooler_output


def _image_features(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    return model.get_image_features(pixel_values=pixels).pooler_output


def train(
    model: Any,
    tokenizer: Any,
    crops: tuple[torch.Tensor, torch.Tensor],
    scenes: tuple[torch.Tensor, torch.Tensor],
    draws: torch.Tensor,
    steps: int,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    log_every: int = 100,
) -> list[dict[str, float]]:
    """Contrastive training against the fixed captions; returns the loss curve.

    ``draws`` weighs how often each crop is drawn into a batch (``draw_weights``); a mistaken mug
    costs three times what another mistake does (the worker turns a mug down on one low score); one
    image in eight of a batch is a whole scene (its scene label's cross-entropy).
    """
    import torch
    from torch.nn import functional as F  # noqa: N812 (torch's own spelling)

    generator = torch.Generator().manual_seed(seed)
    mug_tokens = tokenizer(list(MUG_PROMPTS), padding=True, return_tensors="pt")
    scene_tokens = tokenizer(list(SCENE_LABELS), padding=True, return_tensors="pt")
    crop_pixels, crop_labels = crops
    scene_pixels, scene_labels = scenes
    costs = torch.ones(len(MUG_PROMPTS))
    costs[MUG] = 3.0
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    warmup = max(1, steps // 20)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    model.train()
    curve = []
    running = 0.0
    scene_batch = max(1, batch // 8) if len(scene_labels) else 0
    for step in range(steps):
        chosen = torch.multinomial(
            draws, batch - scene_batch, replacement=True, generator=generator
        )
        images = _image_features(model, _augmented(crop_pixels[chosen], generator))
        texts = _text_features(model, mug_tokens)
        scale = model.logit_scale.exp().clamp(max=100.0)
        loss = F.cross_entropy(
            scale * F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T,
            crop_labels[chosen],
            weight=costs,
        )
        if scene_batch:
            picked = torch.randint(len(scene_labels), (scene_batch,), generator=generator)
            whole = _image_features(model, _augmented(scene_pixels[picked], generator))
            labels = _text_features(model, scene_tokens)
            loss = loss + 0.25 * F.cross_entropy(
                scale * F.normalize(whole, dim=-1) @ F.normalize(labels, dim=-1).T,
                scene_labels[picked],
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running += loss.item()
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "loss": round(running / log_every, 4)})
            print(f"step {step + 1}/{steps}: loss {running / log_every:.4f}", flush=True)
            running = 0.0
    model.eval()
    return curve


# How often a crop of each group is drawn, against 1 for the rest: mugs are ~15 % of the crops
# and the detector's phantoms a few per cent, yet they are what the check is for.
DRAW_WEIGHTS = {"mug": 2.0, "detected mug": 2.0, "phantom": 4.0, "photo phantom": 4.0}


def counts(samples: Sequence[Sample]) -> dict[str, int]:
    return dict(Counter(s.group for s in samples))


def draw_weights(samples: Sequence[Sample]) -> torch.Tensor:
    import torch

    return torch.tensor([DRAW_WEIGHTS.get(s.group, 1.0) for s in samples])


def mug_scores(model: Any, tokenizer: Any, pixels: torch.Tensor) -> np.ndarray:
    """The worker's mug score: the softmax of the mug check's prompts, the first one's share."""
    import torch
    from torch.nn import functional as F  # noqa: N812 (torch's own spelling)

    tokens = tokenizer(list(MUG_PROMPTS), padding=True, return_tensors="pt")
    with torch.inference_mode():
        texts = F.normalize(_text_features(model, tokens), dim=-1)
        scale = float(model.logit_scale.exp().clamp(max=100.0))
        out = []
        for start in range(0, len(pixels), 256):
            images = F.normalize(_image_features(model, pixels[start : start + 256]), dim=-1)
            out.append(torch.softmax(scale * images @ texts.T, dim=-1)[:, MUG])
    return torch.cat(out).numpy() if out else np.zeros(0)


def accuracy(scores: np.ndarray, samples: Sequence[Sample], threshold: float) -> dict[str, Any]:
    """Mug-vs-not accuracy at ``threshold``, overall and for each group of crops."""
    is_mug = np.array([s.caption == MUG for s in samples])
    said = scores >= threshold
    groups: dict[str, Any] = {}
    for group in sorted({s.group for s in samples}):
        mask = np.array([s.group == group for s in samples])
        groups[group] = {
            "crops": int(mask.sum()),
            "correct": round(float((said == is_mug)[mask].mean()), 4),
        }
    return {
        "threshold": threshold,
        "crops": len(samples),
        "accuracy": round(float((said == is_mug).mean()), 4) if len(samples) else None,
        "mug_recall": round(float(said[is_mug].mean()), 4) if is_mug.any() else None,
        "not_mug_rejected": round(float((~said)[~is_mug].mean()), 4) if (~is_mug).any() else None,
        "groups": groups,
    }


def best_threshold(scores: np.ndarray, samples: Sequence[Sample]) -> float:
    """The threshold (in steps of 0.05) with the best balanced accuracy on the validation crops."""
    is_mug = np.array([s.caption == MUG for s in samples])

    def balanced(threshold: float) -> float:
        said = scores >= threshold
        return float(said[is_mug].mean() + (~said)[~is_mug].mean()) / 2

    return max((round(t, 2) for t in np.arange(0.2, 0.85, 0.05)), key=balanced)


def save(model: Any, folder: Path, record: dict[str, Any]) -> None:
    """The weights in fp16 (half the size in git; loaded as float32 on a CPU) and the record."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(str(folder))
    model.to(torch.float32)
    (folder / "train.json").write_text(json.dumps(record, indent=1) + "\n")


def demo_detector(threads: int) -> Detector:
    """The shipped demo detector on the CPU: it finds the phantoms the mug check must reject."""
    from models.demo import DEMO_DETECTOR
    from models.detector import Detector
    from models.layout import ModelInfo
    from models.runtime import choose_device

    return Detector(
        DEMO_DETECTOR,
        ModelInfo(DEMO_DETECTOR.name, "", True),
        choose_device("cpu", "false", threads),
    )


def real_photo_samples(per_photo: int, seed: int, detector: Detector) -> list[Sample]:
    """Crops of the photos ``training.real_photos`` measures on (held out, never trained on):
    each true mug, random boxes away from it, and the detector's cup candidates (a mug where one
    overlaps a true mug by IoU 0.5, a phantom where it overlaps none)."""
    samples: list[Sample] = []
    for number, photo in enumerate(PHOTOS):
        path = photo.locate()
        if path is None:
            continue
        image = Image.open(path).convert("RGB")
        mugs = [Box(*box) for box in photo.mugs]
        rng = np.random.default_rng([seed, number])
        samples += [Sample(crop_for_clip(image, box), MUG, "real mug") for box in mugs]
        for _ in range(per_photo):
            box = _random_box(rng, image.width, image.height, 0.05, 0.7)
            if all(iou(box, mug) < 0.1 for mug in mugs):
                samples.append(Sample(crop_for_clip(image, box), OTHER, "real photo"))
        for cup in mined_cups(detector, image):
            best = max((iou(cup, mug) for mug in mugs), default=0.0)
            if best >= 0.5:
                samples.append(Sample(crop_for_clip(image, cup), MUG, "real mug"))
            elif best < 0.1:
                samples.append(Sample(crop_for_clip(image, cup), OTHER, "real phantom"))
    return samples
