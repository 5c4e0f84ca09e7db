"""The detector's input made with torch on the model's device (SPEC 9): the very pixels
ultralytics' own letterbox gives, and so the very detections of ultralytics' PIL path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from models.detector import DetectorOptions
from models.letterbox import input_size, letterbox, plan, resize_like_opencv
from positioning.geometry import Box
from tests.conftest import ASSETS
from worker.runtime import ModelSet

ultralytics_augment = pytest.importorskip("ultralytics.data.augment")
DESK = Image.open(ASSETS / "desk.jpg").convert("RGB")


def reference(image: Image.Image, imgsz: int) -> np.ndarray:
    """Ultralytics' letterbox of one image alone, as its predictor runs it (OpenCV, BGR)."""
    letterbox_cv = ultralytics_augment.LetterBox(input_size(imgsz, 32), auto=True, stride=32)
    bgr = np.array(image)[..., ::-1].copy()
    return letterbox_cv(image=bgr)[..., ::-1]


@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    imgsz=st.sampled_from([32, 100, 320, 384, 640, 1024, 2048]),
)
@settings(max_examples=300, deadline=None)
def test_the_plan_is_ultralytics_letterbox_arithmetic(width: int, height: int, imgsz: int) -> None:
    letterbox_cv = ultralytics_augment.LetterBox(input_size(imgsz, 32), auto=True, stride=32)
    expected = letterbox_cv.get_params({"img": np.zeros((height, width, 3), np.uint8)})
    where = plan(width, height, imgsz, 32)
    assert where.resized == expected["new_unpad"]
    assert (where.top, where.left) == (expected["top"], expected["left"])
    height_out = expected["new_unpad"][1] + expected["top"] + expected["bottom"]
    width_out = expected["new_unpad"][0] + expected["left"] + expected["right"]
    assert where.shape == (height_out, width_out)
    assert where.shape[0] % 32 == 0 and where.shape[1] % 32 == 0


CASES = [
    (DESK, 640),  # downscaled, padded top and bottom
    (DESK, 320),
    (DESK, 100),  # imgsz off the stride: rounded up as ultralytics does
    (DESK.resize((213, 117)), 640),  # upscaled
    (DESK.rotate(90, expand=True), 640),  # padded left and right
    (DESK.resize((640, 448)), 640),  # already the input's size: no resize at all
    (DESK.resize((1280, 854)), 640),  # exactly half
    (DESK.resize((4000, 7)), 640),  # a sliver
]
CASE_IDS = ["desk", "desk-320", "desk-100", "upscaled", "portrait", "exact", "half", "sliver"]


@pytest.mark.parametrize(("image", "imgsz"), CASES, ids=CASE_IDS)
def test_letterbox_gives_ultralytics_pixels_bit_for_bit(image: Image.Image, imgsz: int) -> None:
    where = plan(image.width, image.height, imgsz, 32)
    mine = letterbox(image, where, "cpu").permute(1, 2, 0).numpy()
    assert mine.shape == reference(image, imgsz).shape
    assert np.array_equal(mine, reference(image, imgsz).astype(np.float32))


@pytest.mark.parametrize(("image", "imgsz"), CASES, ids=CASE_IDS)
def test_the_device_resize_is_opencvs_bit_for_bit(image: Image.Image, imgsz: int) -> None:
    """What a GPU runs instead of OpenCV, run here on the CPU against OpenCV itself."""
    import cv2
    import torch

    where = plan(image.width, image.height, imgsz, 32)
    rgb = np.array(image)
    expected = cv2.resize(rgb, where.resized, interpolation=cv2.INTER_LINEAR)
    resized = resize_like_opencv(torch.from_numpy(rgb), *where.resized).numpy()
    assert np.array_equal(resized, expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        DetectorOptions(),
        DetectorOptions(imgsz=320),
        DetectorOptions(imgsz=100, conf=0.05),
        DetectorOptions(augment=True),
    ],
    ids=["640", "320", "100-low-conf", "augment"],
)
def test_detections_are_those_of_ultralytics_own_pil_path(
    demo_models: ModelSet, demo_model_dir: Path, options: DetectorOptions
) -> None:
    from ultralytics import YOLO

    from models.thread import MODEL_THREAD

    detector = demo_models.detector
    assert detector is not None
    images = [DESK, ImageOps.mirror(DESK).resize((720, 480)), DESK.rotate(90, expand=True)]
    ours = MODEL_THREAD.run(lambda: detector.predict(images, options))
    model = YOLO(str(demo_model_dir / "yolov8s.pt"), task="detect")
    # one image at a time: ultralytics pads a batch of mixed sizes to the full square
    theirs = [
        model.predict(
            image,
            conf=options.conf,
            iou=options.iou,
            imgsz=options.imgsz,
            max_det=options.max_det,
            augment=options.augment,
            device="cpu",
            verbose=False,
        )[0]
        for image in images
    ]
    assert sum(len(found) for found in ours) > 10  # the demo detector finds things here
    for image, found, result in zip(images, ours, theirs, strict=True):
        expected = sorted(
            zip(
                result.boxes.conf.tolist(),
                result.boxes.xyxy.tolist(),
                result.boxes.cls.tolist(),
                strict=True,
            ),
            key=lambda row: -row[0],
        )
        assert [d.class_id for d in found] == [int(cls) for _, _, cls in expected]
        for detection, (confidence, xyxy, _) in zip(found, expected, strict=True):
            box = Box(*xyxy).clip(image.width, image.height).as_list()
            assert detection.confidence == pytest.approx(confidence, abs=1e-4)
            assert max(abs(a - b) for a, b in zip(detection.box.as_list(), box, strict=True)) <= 1.0
