"""The demo CLIP (models/weights/demo-clip, trained by scripts/train_demo_clip.py) tells mugs from
the rest offline, through the worker's own CLIP code; and which CLIPs may decide the mug check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.clip import MUG_PROMPTS, crop_for_clip
from models.demo import DEMO_CLIP_WEIGHTS
from models.layout import record_model
from models.locate import ModelSearch, locate_clip
from positioning.geometry import Box
from training.demo_clip import CAPTION_OF, CLIP_HELD_OUT_SEED, MUG, OTHER
from training.synthetic.scenes import generate_scene
from worker.runtime import ModelSet
from worker.settings import Settings

pytestmark = pytest.mark.slow


def held_out_crops(count: int, start: int) -> tuple[list, list[bool]]:
    """Crops of every true object and distractor of held-out scenes, and whether each is a mug."""
    crops, is_mug = [], []
    for index in range(start, start + count):
        scene = generate_scene(CLIP_HELD_OUT_SEED, index)
        things = [(o["class"], o["box"]) for o in scene.truth["objects"]]
        things += [(d["kind"], d["box"]) for d in scene.truth["distractors"]]
        for kind, box in things:
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                crops.append(crop_for_clip(scene.image, Box(*box)))
                is_mug.append(CAPTION_OF.get(kind, OTHER) == MUG)
    return crops, is_mug


def test_the_demo_clip_tells_held_out_mugs_from_the_rest(demo_models: ModelSet) -> None:
    """Scenes of the held-out seed past the ones the training record measured, scored exactly as
    the pipeline scores a candidate (the mug prompt's share against the others). The floor is the
    shipped model's (0.919 / 0.927 / 0.917 here); issue 22 asks 0.95, which it does not reach
    (README, The demo CLIP)."""
    clip = demo_models.clip
    assert clip is not None
    crops, is_mug = held_out_crops(30, start=1000)
    scores = clip.zero_shot(clip.embed_images(crops), MUG_PROMPTS)[:, 0]
    said = scores >= Settings.model_fields["mug_score_min"].default
    truth = np.array(is_mug)
    assert truth.sum() >= 20 and (~truth).sum() >= 100
    assert float((said == truth).mean()) >= 0.9
    assert float(said[truth].mean()) >= 0.9  # mugs kept
    assert float((~said)[~truth].mean()) >= 0.9  # the rest turned down


def test_the_training_record_ships_with_the_weights() -> None:
    record = json.loads((DEMO_CLIP_WEIGHTS / "train.json").read_text())
    assert record["seeds"]["held_out"] == CLIP_HELD_OUT_SEED
    assert record["seeds"]["held_out"] not in (record["seeds"]["train"], record["seeds"]["val"])
    assert {"accuracy", "mug_recall", "not_mug_rejected", "groups"} <= set(record["held_out"])


@pytest.mark.parametrize(
    ("entry", "checks"),
    [
        ({"demo": True, "checks_mugs": True}, True),  # the trained demo CLIP
        ({"demo": True}, False),  # a random-weight demo CLIP of an older folder
        ({"demo": False}, True),  # production weights
    ],
)
def test_the_manifest_says_whether_a_clip_may_decide(
    tmp_path: Path, entry: dict[str, bool], checks: bool
) -> None:
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "model.safetensors").write_bytes(b"weights")
    record_model(
        tmp_path,
        "clip",
        name="c",
        source="test",
        demo=entry["demo"],
        checks_mugs=entry.get("checks_mugs"),
    )
    found = locate_clip(ModelSearch(tmp_path, "clip", None, "openai/clip-vit-base-patch32"))
    assert found.checks_mugs is checks
    assert found.identity().checks_mugs is checks


def test_the_demo_folder_marks_its_clip_as_one_that_checks_mugs(demo_model_dir: Path) -> None:
    manifest = json.loads((demo_model_dir / "manifest.json").read_text())["models"]
    assert manifest["clip-vit-base-patch32"]["checks_mugs"] is True
    assert manifest["clip-vit-base-patch32"]["demo"] is True
