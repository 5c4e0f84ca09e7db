"""CLIP through transformers, from a local Hugging Face folder: image embeddings and zero-shot scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from models.layout import ModelInfo
from models.locate import Located
from models.runtime import Device
from positioning.geometry import Box

if TYPE_CHECKING:  # torch is imported when a model loads, not when this module does
    import torch

# The mug check: the first prompt is "a mug"; the others are what a detector's "cup" may really be
# on a desk, and the last is whatever else a phantom box lands on (a face, a cat, a coin). A mug
# score is the first prompt's share of the softmax over all of them.
MUG_PROMPTS = (
    "a photo of a mug",
    "a photo of a drinking glass",
    "a photo of a bowl",
    "a photo of a plate",
    "a photo of a laptop",
    "a photo of a keyboard",
    "a photo of a phone",
    "a photo of a book",
    "a photo of something else",
)
SCENE_LABELS = (
    "an office desk",
    "a dining table",
    "a kitchen counter",
    "a coffee table",
    "a cluttered desk",
    "an empty table",
)

CROP_MARGIN = 0.1
# CLIP's processor scales a crop's shortest side to 224 px: a 4000x1 box would become 896000x224.
# Crops longer than this ratio are padded to it first (CLIP only sees the middle square anyway).
CROP_MAX_ASPECT = 4


class Clip:
    """One CLIP model, loaded once; text embeddings of repeated prompts are computed once and kept."""

    def __init__(self, folder: Path, info: ModelInfo, device: Device) -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self.info = info
        self.device = device
        self._dtype = torch.float16 if device.half else torch.float32
        self._processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
        model = CLIPModel.from_pretrained(str(folder), local_files_only=True, dtype=self._dtype)
        self._model = model.to(device.name).eval()  # type: ignore[arg-type]  # transformers' hint
        self._logit_scale = float(min(model.logit_scale.exp().item(), 100.0))
        self._text_cache: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, found: Located, device: Device) -> Clip:
        return cls(found.path, found.identity(), device)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit-length image embeddings, one row per image, from one batched forward pass."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        # transformers' CLIP image processor is torchvision's: it resizes, crops and normalises
        # on the model's device
        pixels = self._processor(images=list(images), return_tensors="pt", device=self.device.name)[
            "pixel_values"
        ]
        with torch.inference_mode():
            output = self._model.get_image_features(pixel_values=pixels.to(dtype=self._dtype))
        return _unit_rows(output.pooler_output)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length text embeddings; texts seen before come from the cache."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            import torch

            tokens = self._processor.tokenizer(
                missing, padding=True, truncation=True, return_tensors="pt"
            )
            with torch.inference_mode():
                output = self._model.get_text_features(
                    input_ids=tokens["input_ids"].to(self.device.name),
                    attention_mask=tokens["attention_mask"].to(self.device.name),
                )
            for text, row in zip(missing, _unit_rows(output.pooler_output), strict=True):
                self._text_cache[text] = row
        return np.stack([self._text_cache[t] for t in texts])

    def zero_shot(self, image_embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Probability of each text for each image (softmax over the texts, CLIP's own scale)."""
        logits = self._logit_scale * image_embeddings @ self.embed_texts(texts).T
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    @property
    def dimension(self) -> int:
        return int(self._model.config.projection_dim)


def _unit_rows(features: torch.Tensor) -> np.ndarray:
    rows = features.float().cpu().numpy()
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def crop_for_clip(image: Image.Image, box: Box) -> Image.Image:
    """The box with a small margin of context, the way CLIP saw objects in its training photos."""
    margin_x, margin_y = box.width * CROP_MARGIN, box.height * CROP_MARGIN
    left = min(max(0, int(box.x1 - margin_x)), image.width - 1)
    top = min(max(0, int(box.y1 - margin_y)), image.height - 1)
    right = min(max(left + 1, round(box.x2 + margin_x)), image.width)
    bottom = min(max(top + 1, round(box.y2 + margin_y)), image.height)
    crop = image.crop((left, top, right, bottom))
    long_side, short_side = max(crop.size), min(crop.size)
    if long_side <= CROP_MAX_ASPECT * short_side:
        return crop
    # and no more pixels than CLIP will use: the long side at most 4 x its 224-px input
    crop.thumbnail((CROP_MAX_ASPECT * 224, CROP_MAX_ASPECT * 224))
    padded = (
        (crop.width, -(-crop.width // CROP_MAX_ASPECT))
        if crop.width > crop.height
        else (-(-crop.height // CROP_MAX_ASPECT), crop.height)
    )
    return ImageOps.pad(crop, padded, color=(128, 128, 128))
