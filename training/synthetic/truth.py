"""Ground truth for a generated scene: label boxes, YOLO lines and the expected rule verdicts.

The verdicts come from the project's own ``rules.judge.judge`` on the true boxes and the true scale,
so "the worker agrees with the truth" means the detector and the scale were right, not that two
implementations of the rules happen to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from positioning.geometry import Box
from positioning.scene import Detection, build_scene
from rules.judge import judge
from rules.model import Rule, rule_from_dict

# COCO ids (ultralytics' coco.yaml): the labels use them directly, so a trained model's class
# names are COCO names and the worker needs no mapping.
COCO_IDS = {
    "cup": 41,
    "dining table": 60,
    "laptop": 63,
    "keyboard": 66,
    "cell phone": 67,
    "book": 73,
}
MUG_CLASS = "cup"
TABLE_CLASS = "dining table"

# The rule set every scene is judged by, as structured rules a job can send unchanged.
FIXED_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "laptop-15cm",
        "type": "min_distance",
        "object": "laptop",
        "distance": {"value": 15, "unit": "cm"},
    },
    {
        "id": "keyboard-10cm",
        "type": "min_distance",
        "object": "keyboard",
        "distance": {"value": 10, "unit": "cm"},
    },
    {
        "id": "phone-10cm",
        "type": "min_distance",
        "object": "cell phone",
        "distance": {"value": 10, "unit": "cm"},
    },
    {
        "id": "edge-5cm",
        "type": "edge_margin",
        "distance": {"value": 5, "unit": "cm"},
        "severity": "critical",
    },
    {"id": "spacing-10cm", "type": "spacing", "distance": {"value": 10, "unit": "cm"}},
)


def fixed_rules() -> list[Rule]:
    return [rule_from_dict(dict(rule)) for rule in FIXED_RULES]


@dataclass(frozen=True)
class LabelBox:
    """One labelled object: its COCO class and its box in image pixels (x1, y1, x2, y2)."""

    class_name: str
    box: tuple[float, float, float, float]

    @property
    def class_id(self) -> int:
        return COCO_IDS[self.class_name]

    def yolo_line(self, width: int, height: int) -> str:
        """``class cx cy w h``, normalised to the image size."""
        x1, y1, x2, y2 = self.box
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        return f"{self.class_id} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"

    def as_json(self) -> dict[str, Any]:
        return {"class": self.class_name, "class_id": self.class_id, "box": list(self.box)}


def expected_verdicts(
    width: int,
    height: int,
    labels: Sequence[LabelBox],
    mm_per_px: float,
    rules: Sequence[Rule] | None = None,
) -> list[dict[str, Any]]:
    """Each (rule, mug) result of judging the true boxes at the true scale, the table as surface."""
    detections = [
        Detection(f"t{i}", label.class_name, label.class_id, 1.0, Box(*label.box))
        for i, label in enumerate(labels, start=1)
    ]
    mugs = [(d, None) for d in detections if d.class_name == MUG_CLASS]
    scene = build_scene(width, height, detections, mugs, mm_per_px=mm_per_px)
    judgement = judge(scene, fixed_rules() if rules is None else rules)
    boxes = {mug.id: mug.box.as_list() for mug in scene.mugs}
    return [
        {
            "rule_id": result.rule.rule_id,
            "type": result.rule.type,
            "mug_id": result.mug_id,
            "mug_box": boxes.get(result.mug_id or ""),
            "status": result.status,
            "measured": None
            if result.measured is None
            else {"value": result.measured.value, "unit": result.measured.unit},
        }
        for result in judgement.results
    ]
