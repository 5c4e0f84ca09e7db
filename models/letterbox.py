"""The detector's input made on the model's device: each image resized and padded as ultralytics'
own ``LetterBox`` does it for one image alone (the smallest stride-multiple rectangle, the image
centred, grey 114 around it, OpenCV's resize to the bit), so a GPU is not fed by one CPU thread
running OpenCV. On a CPU, OpenCV itself resizes (the same pixels, faster there than torch).

``plan`` is pure arithmetic (ultralytics' rounding, step by step); ``letterbox`` does the pixels.
Images whose plans have the same shape can share one batched call and each still gets exactly what
it gets alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

PAD_VALUE = 114


@dataclass(frozen=True)
class Plan:
    """Where an image of ``width`` x ``height`` goes in the model's input."""

    width: int
    height: int
    resized: tuple[int, int]  # (width, height) of the image inside the input
    left: int
    top: int
    shape: tuple[int, int]  # (height, width) of the whole input

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """An input-pixel position back in the image's own pixels, as ultralytics maps its boxes
        (each axis by its rounded size: 85 input rows for 640 image rows is 85/640, not 2/15)."""
        return (
            (x - self.left) / (self.resized[0] / self.width),
            (y - self.top) / (self.resized[1] / self.height),
        )


def input_size(imgsz: int, stride: int) -> int:
    """The square ultralytics fits images into: ``imgsz`` rounded up to the stride."""
    return max(math.ceil(imgsz / stride) * stride, stride)


def plan(width: int, height: int, imgsz: int, stride: int) -> Plan:
    """Ultralytics' ``LetterBox(auto=True)`` arithmetic for one image (its rounding kept)."""
    size = input_size(imgsz, stride)
    ratio = min(size / height, size / width)
    resized = (max(round(width * ratio), 1), max(round(height * ratio), 1))
    pad_w, pad_h = (size - resized[0]) % stride, (size - resized[1]) % stride
    left, right = round(pad_w / 2 - 0.1), round(pad_w / 2 + 0.1)
    top, bottom = round(pad_h / 2 - 0.1), round(pad_h / 2 + 0.1)
    shape = (resized[1] + top + bottom, resized[0] + left + right)
    return Plan(width, height, resized, left, top, shape)


def letterbox(image: Image.Image, where: Plan, device: str) -> torch.Tensor:
    """The image as the model's input, RGB, 3 x H x W, values 0-255 (float, on ``device``)."""
    import torch

    rgb = np.asarray(image.convert("RGB"))
    if (where.width, where.height) == where.resized:
        pixels = torch.from_numpy(rgb.copy()).to(device)
    elif device == "cpu":  # OpenCV itself: the same pixels, and ~4x faster than torch on a CPU
        import cv2

        pixels = torch.from_numpy(cv2.resize(rgb, where.resized, interpolation=cv2.INTER_LINEAR))
    else:
        pixels = resize_like_opencv(torch.from_numpy(rgb.copy()).to(device), *where.resized)
    canvas = torch.full((*where.shape, 3), PAD_VALUE, dtype=torch.uint8, device=device)
    canvas[
        where.top : where.top + where.resized[1],
        where.left : where.left + where.resized[0],
    ] = pixels
    return canvas.permute(2, 0, 1).float()


def resize_like_opencv(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``cv2.resize(..., INTER_LINEAR)`` of an 8-bit H x W x C image, bit for bit, in torch.

    OpenCV resizes 8-bit images in fixed point: 11-bit weights, a horizontal pass into integers,
    then a vertical pass that drops bits as its SIMD code does. Doing the same sums here gives the
    very pixels ultralytics feeds the model (a float bilinear resize differs by one level in ~7 %
    of them, enough to move a weak box by pixels), on whatever device ``pixels`` is on.
    """
    import torch

    columns, left_weight, right_weight = _taps(pixels.shape[1], width, pixels.device)
    rows, top_weight, bottom_weight = _taps(pixels.shape[0], height, pixels.device)

    def across(row_indices: torch.Tensor) -> torch.Tensor:
        """The horizontal pass, on the source rows the vertical pass reads (each row alone)."""
        picked = pixels[row_indices].to(torch.int32)
        return (
            picked[:, columns[0]] * left_weight[None, :, None]
            + picked[:, columns[1]] * right_weight[None, :, None]
        )

    upper, lower = across(rows[0]) >> 4, across(rows[1]) >> 4
    total = ((upper * top_weight[:, None, None]) >> 16) + (
        (lower * bottom_weight[:, None, None]) >> 16
    )
    return ((total + 2) >> 2).clamp(0, 255).to(torch.uint8)


def _taps(
    source: int, target: int, device: torch.device
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
    """For each target pixel: the two source pixels it reads and their weights (sum 2048),
    computed as OpenCV computes them (single-precision positions, clamped at the borders)."""
    import torch

    scale = 1.0 / (target / source)
    position = ((np.arange(target) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = position - first
    before = first < 0
    fraction[before], first[before] = 0.0, 0
    after = first >= source - 1
    fraction[after], first[after] = 0.0, source - 1
    weight = np.round((1.0 - fraction) * 2048).astype(np.int32)
    second = np.minimum(first + 1, source - 1)
    return (
        (torch.from_numpy(first).to(device), torch.from_numpy(second).to(device)),
        torch.from_numpy(weight).to(device),
        torch.from_numpy(2048 - weight).to(device),
    )
