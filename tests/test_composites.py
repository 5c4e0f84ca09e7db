"""Composites (training/composites.py): generated objects cut out with their shadows and pasted on
a photo, their labels moved along; what lies under a shadow only darkens."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.composites import Layer, object_layer, paste

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layer() -> Layer:
    return next(found for index in range(5) if (found := object_layer(3, index)) is not None)


def test_the_layer_holds_every_labelled_object_and_no_table(layer: Layer) -> None:
    alpha = np.asarray(layer.image.getchannel("A"))
    assert layer.labels and all(label.class_name != "dining table" for label in layer.labels)
    for label in layer.labels:
        x1, y1, x2, y2 = label.box
        assert 0 <= x1 < x2 <= layer.image.width and 0 <= y1 < y2 <= layer.image.height
        inside = alpha[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
        assert (inside > 0).mean() > 0.3, label  # the object is drawn in its box
    assert (alpha == 0).mean() > 0.2  # the table between the objects is left out


@pytest.mark.parametrize("size", [(640, 480), (300, 900), (1600, 1000)])
def test_pasted_labels_stay_on_the_photo_and_on_their_objects(layer: Layer, size: tuple) -> None:
    photo = Image.fromarray(
        np.random.default_rng(0).integers(60, 200, (size[1], size[0], 3), dtype=np.uint8)
    )
    image, labels = paste(photo, layer, np.random.default_rng(1))
    assert image.size == photo.size and labels
    before, after = np.asarray(photo, dtype=np.int16), np.asarray(image, dtype=np.int16)
    for label in labels:
        x1, y1, x2, y2 = label.box
        assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]
        box = (slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2))))
        assert (np.abs(after[box] - before[box]).sum(axis=2) > 30).mean() > 0.3
    assert len(labels) <= len(layer.labels)


def test_a_shadow_only_darkens_the_photo(layer: Layer) -> None:
    """The layer's shadows alone (its objects made transparent) never brighten a pixel."""
    transparent = layer.image.copy()
    transparent.putalpha(0)
    photo = Image.new("RGB", (900, 700), (120, 160, 200))
    image, _ = paste(photo, Layer(transparent, layer.shade, layer.labels), np.random.default_rng(2))
    pixels = np.asarray(image, dtype=np.int16)
    assert np.all(pixels <= [120, 160, 200])
    assert (pixels.sum(axis=2) < 470).mean() > 0.01  # and some shadow fell
