"""The real-photo measure (training/real_photos.py): its photos are installed, and it counts right."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from training.real_photos import PHOTOS, Photo, judge_photo, summarize

COFFEE = next(photo for photo in PHOTOS if photo.name == "skimage:coffee.png")


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda photo: photo.name)
def test_every_photo_ships_in_an_installed_package(photo: Photo) -> None:
    path = photo.locate()
    assert path is not None, f"{photo.name} not found: is {photo.package} installed?"
    with Image.open(path) as image:
        width, height = image.size
    assert photo.licence
    for x1, y1, x2, y2 in photo.mugs:  # hand-drawn boxes lie inside their photo
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def result_with(*boxes: list[float]) -> dict[str, Any]:
    """An analyze result's detections and mugs, one kept mug per box."""
    detections = [{"id": f"d{index}", "box": box} for index, box in enumerate(boxes)]
    return {
        "detections": detections,
        "mugs": [{"detection_id": detection["id"]} for detection in detections],
    }


@pytest.mark.parametrize(
    ("boxes", "found", "phantoms"),
    [
        ([], 0, 0),  # missed
        ([[172, 20, 410, 288]], 1, 0),  # found
        ([[172, 20, 410, 288], [0, 0, 50, 50]], 1, 1),  # found, and a phantom elsewhere
        ([[300, 200, 420, 300]], 0, 1),  # overlaps the true mug too little: a phantom
    ],
)
def test_a_kept_mug_is_found_or_a_phantom(
    boxes: list[list[float]], found: int, phantoms: int
) -> None:
    row = judge_photo(COFFEE, result_with(*boxes))
    assert (row["found"], row["phantoms"], row["mugs_kept"]) == (found, phantoms, len(boxes))


def test_the_summary_counts_photos_not_mugs() -> None:
    empty = Photo("skimage", "data/brick.png", "CC0")
    rows = [
        judge_photo(empty, result_with([0, 0, 10, 10], [20, 20, 30, 30])),
        judge_photo(empty, result_with()),
        judge_photo(COFFEE, result_with([172, 20, 410, 288])),
    ]
    assert summarize(rows) == {
        "mug_free_photos": 2,
        "mug_free_photos_with_a_phantom": 1,
        "photos_with_a_mug": 1,
        "true_mugs": 1,
        "true_mugs_found": 1,
        "mug_photos_with_a_phantom": 0,
    }
