"""Generated desk scenes with exact labels, for training and measuring the detector offline.

No pretrained weights can be downloaded on the development machines, so the demo detector is
trained here on procedurally drawn desks (``python -m scripts.train_detector``) and the whole
worker is measured on a held-out set (``python -m scripts.accuracy``). Needs numpy and PIL, plus
the project's own ``positioning`` and ``rules`` for the expected verdicts; never torch or
ultralytics.
"""

from training.synthetic.dataset import (
    HELD_OUT_SEED,
    TRAIN_SEED,
    VAL_SEED,
    read_truths,
    write_scenes,
)
from training.synthetic.scenes import (
    GENERATOR,
    Composition,
    GeneratedScene,
    SceneOptions,
    compose,
    generate_scene,
    render,
)
from training.synthetic.truth import COCO_IDS, FIXED_RULES, LabelBox, expected_verdicts, fixed_rules

__all__ = [
    "COCO_IDS",
    "FIXED_RULES",
    "GENERATOR",
    "HELD_OUT_SEED",
    "TRAIN_SEED",
    "VAL_SEED",
    "Composition",
    "GeneratedScene",
    "LabelBox",
    "SceneOptions",
    "compose",
    "expected_verdicts",
    "fixed_rules",
    "generate_scene",
    "read_truths",
    "render",
    "write_scenes",
]
