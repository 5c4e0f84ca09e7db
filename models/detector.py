"""The YOLOv8 detector: loaded once from an absolute weights path, one batched call per job."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from models.layout import ModelInfo
from models.letterbox import Plan, input_size, letterbox, plan
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
        network: Any = self._model.model  # ultralytics' hint says str | None; it is the net
        self.stride = int(network.stride.max())  # the input must be a multiple of it

    @classmethod
    def load(cls, found: Located, device: Device) -> Detector:
        return cls(found.path, found.identity(), device)

    def predict(
        self, images: Sequence[Image.Image], options: DetectorOptions
    ) -> list[list[Detection]]:
        """Detect objects in every image; boxes in the image's pixels, clipped to it.

        Each image is letterboxed on the model's device as ultralytics does it for that image
        alone (models/letterbox); images whose inputs have the same shape share one model call.
        So an image's detections never depend on the images beside it.
        """
        if not images:
            return []
        import torch

        plans = [plan(i.width, i.height, options.imgsz, self.stride) for i in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, where in enumerate(plans):
            groups.setdefault(where.shape, []).append(index)
        found: list[list[Detection]] = [[] for _ in images]
        with torch.inference_mode():
            for members in groups.values():
                batch = torch.stack(
                    [letterbox(images[i], plans[i], self.device.name) for i in members]
                )
                results = self._model.predict(
                    batch / 255.0,
                    conf=options.conf,
                    iou=options.iou,
                    imgsz=input_size(options.imgsz, self.stride),
                    max_det=options.max_det,
                    augment=options.augment,
                    device=self.device.name,
                    quantize=16 if self.device.half else 32,
                    verbose=False,
                )
                for i, result in zip(members, results, strict=True):
                    found[i] = self._detections(result, plans[i])
        # ultralytics' device set-up drops torch to one thread on small CPUs; put it back.
        torch.set_num_threads(self.device.threads)
        return found

    def _detections(self, result: Any, where: Plan) -> list[Detection]:
        """One ultralytics ``Results`` (untyped, in input pixels) as detections in the image's
        pixels, highest confidence first."""
        boxes = result.boxes
        xyxy = boxes.xyxy.float().cpu().tolist()
        confidences = boxes.conf.float().cpu().tolist()
        class_ids = boxes.cls.int().cpu().tolist()
        order = sorted(range(len(xyxy)), key=lambda i: -confidences[i])
        detections = []
        for rank, i in enumerate(order, start=1):
            x1, y1 = where.to_image(xyxy[i][0], xyxy[i][1])
            x2, y2 = where.to_image(xyxy[i][2], xyxy[i][3])
            detections.append(
                Detection(
                    id=f"d{rank}",
                    class_name=self.classes.get(class_ids[i], str(class_ids[i])),
                    class_id=int(class_ids[i]),
                    confidence=float(confidences[i]),
                    box=Box(x1, y1, x2, y2).clip(where.width, where.height),
                )
            )
        return detections
