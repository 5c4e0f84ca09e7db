"""The YOLOv8 detector: loaded once from an absolute weights path, one batched call per job."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from models.layout import ModelInfo
from models.locate import Located
from models.runtime import Device
from positioning.geometry import Box
from positioning.scene import Detection

# Placement search grows fast with crowded scenes; no desk photo has more objects than this.
MAX_DETECTIONS = 300
MAX_IMGSZ = 2048  # the largest model input a job (or the warm-up) may ask for


class DetectorOptions(BaseModel):
    """How the detector runs: the one home of these options, their defaults and their bounds
    (a job's ``options`` extend them, ``AnalyzeOptions.detector_options`` takes them back out)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.45, ge=0.0, le=1.0)
    imgsz: int = Field(640, ge=32, le=MAX_IMGSZ)
    max_det: int = Field(100, ge=1, le=MAX_DETECTIONS)
    # test-time augmentation (ultralytics): the image as it is, mirrored at 0.83 of its size, and
    # at 0.67, the boxes of the three passes merged by one NMS (about twice the detector's time)
    augment: bool = False


class Detector:
    """Ultralytics YOLO behind a small interface: PIL images in, ``Detection`` lists out."""

    def __init__(self, weights: Path, info: ModelInfo, device: Device) -> None:
        from ultralytics import YOLO

        self.info = info
        self.device = device
        self._model = YOLO(str(weights.absolute()), task="detect")
        self.classes: dict[int, str] = {int(k): str(v) for k, v in self._model.names.items()}

    @classmethod
    def load(cls, found: Located, device: Device) -> Detector:
        return cls(found.path, found.identity(), device)

    def predict(
        self, images: Sequence[Image.Image], options: DetectorOptions
    ) -> list[list[Detection]]:
        """Detect objects in every image with one batched model call; boxes clipped to the image."""
        if not images:
            return []
        import torch

        with torch.inference_mode():
            results = self._model.predict(
                list(images),
                conf=options.conf,
                iou=options.iou,
                imgsz=options.imgsz,
                max_det=options.max_det,
                augment=options.augment,
                device=self.device.name,
                quantize=16 if self.device.half else 32,
                verbose=False,
            )
        # ultralytics' device set-up drops torch to one thread on small CPUs; put it back.
        torch.set_num_threads(self.device.threads)
        return [
            self._detections(result, image) for result, image in zip(results, images, strict=True)
        ]

    def _detections(self, result: Any, image: Image.Image) -> list[Detection]:
        """One ultralytics ``Results`` (untyped) as detections, highest confidence first."""
        boxes = result.boxes
        xyxy = boxes.xyxy.float().cpu().tolist()
        confidences = boxes.conf.float().cpu().tolist()
        class_ids = boxes.cls.int().cpu().tolist()
        order = sorted(range(len(xyxy)), key=lambda i: -confidences[i])
        return [
            Detection(
                id=f"d{rank}",
                class_name=self.classes.get(class_ids[i], str(class_ids[i])),
                class_id=int(class_ids[i]),
                confidence=float(confidences[i]),
                box=Box.from_list(xyxy[i]).clip(image.width, image.height),
            )
            for rank, i in enumerate(order, start=1)
        ]
