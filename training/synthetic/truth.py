"""Ground truth for a generated scene: label boxes, YOLO lines and the expected rule verdicts.

The verdicts come from the project's own ``rules.judge.judge`` on the true boxes and the true scale,
so "the worker agrees with the truth" means the detector and the scale were right, not that two
implementations of the rules happen to match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from positioning.geometry import Box
from positioning.scene import Detection, build_scene
from rules.judge import judge
from rules.model import Rule, rule_from_dict
from training.synthetic.render import polygon_gap

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


# ------------------------------------------------------------------ on the table plane (SPEC 10)


def _box_gap(first: np.ndarray, second: np.ndarray) -> float:
    low_a, high_a, low_b, high_b = first.min(0), first.max(0), second.min(0), second.max(0)
    apart = np.maximum(0.0, np.maximum(low_b - high_a, low_a - high_b))
    return float(np.hypot(*apart))


def plane_truth(
    footprints: Sequence[tuple[str, np.ndarray]],
    hulls: Sequence[np.ndarray],
    table_mm: tuple[float, float],
    visible_sides: Sequence[bool],
) -> list[dict[str, Any]]:
    """Every mug's true table-plane measures: its gap to the nearest object of each class and
    to the nearest other mug, and its distance from the nearest table edge in view (negative:
    over it; None: no edge in view), from the objects' true footprints (world mm: where each
    touches the table).

    The rules measure boxes (SPEC 4), so ``gaps_mm`` are between the footprints' boxes on the
    table (the table's axes), as the top-down truth measures image boxes; ``shape_gaps_mm`` are
    between the things' whole shapes seen from above (``hulls``: a mug's handle and a laptop's
    screen included, a rotated book nearer than its box's corners).

    ``footprints`` are in label order (label i + 1, after the table); ``visible_sides`` says for
    each table side (y = 0, x = w, y = d, x = 0) whether it is in the picture.
    """
    w, d = table_mm

    def edge(points: np.ndarray) -> float | None:
        sides = [points[:, 1], w - points[:, 0], d - points[:, 1], points[:, 0]]
        seen = [
            float(side.min()) for side, shown in zip(sides, visible_sides, strict=True) if shown
        ]
        return min(seen) if seen else None

    measures = []
    for index, (class_name, footprint) in enumerate(footprints, start=1):
        if class_name != MUG_CLASS:
            continue
        gaps: dict[str, float] = {}
        shape_gaps: dict[str, float] = {}
        for other_index, (other_class, other) in enumerate(footprints, start=1):
            if other_index == index:
                continue
            name = "mug" if other_class == MUG_CLASS else other_class
            shape = polygon_gap(hulls[index - 1], hulls[other_index - 1])
            shape_gaps[name] = min(shape_gaps.get(name, math.inf), shape)
            gaps[name] = min(gaps.get(name, math.inf), _box_gap(footprint, other))
        measures.append(
            {
                "label": index,
                "gaps_mm": {name: round(value, 2) for name, value in sorted(gaps.items())},
                "shape_gaps_mm": {name: round(v, 2) for name, v in sorted(shape_gaps.items())},
                "edge_mm": None if (e := edge(footprint)) is None else round(e, 2),
            }
        )
    return measures


def plane_verdicts(measures: Sequence[dict[str, Any]]) -> dict[tuple[int, str], str]:
    """The fixed rules' verdicts from the true plane measures, by (mug label, rule id); a rule
    with nothing to measure (no such object, no other mug, no edge in view) is left out."""
    verdicts = {}
    for mug in measures:
        for rule in FIXED_RULES:
            limit = rule["distance"]["value"] * (10.0 if rule["distance"]["unit"] == "cm" else 1.0)
            if rule["type"] == "edge_margin":
                value = mug["edge_mm"]
            else:
                name = "mug" if rule["type"] == "spacing" else rule["object"]
                value = mug["gaps_mm"].get(name)
            if value is not None:
                verdicts[(mug["label"], rule["id"])] = "pass" if value >= limit else "fail"
    return verdicts
