"""Whole ``analyze`` / ``health`` jobs through Worker.handle on the demo models."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from models.detector import DetectorOptions
from models.layout import ModelInfo
from positioning.geometry import Box
from positioning.scene import Detection
from scripts.show_result import RESULT_KEYS
from tests.conftest import encode_image
from worker.actions import Worker
from worker.progress import STAGES
from worker.runtime import ModelSet

pytestmark = pytest.mark.slow


def run(app: Worker, payload: dict[str, Any], job_id: str = "job-1") -> dict[str, Any]:
    output = app.handle({"id": job_id, "input": payload})
    json.loads(json.dumps(output, allow_nan=False))  # what RunPod does with every result
    return output


class ScriptedDetector:
    """Stands in for YOLO where a test needs known detections (the demo detector finds nothing)."""

    def __init__(self, per_image: list[list[Detection]]) -> None:
        self.per_image = per_image
        self.calls: list[int] = []
        self.options: list[DetectorOptions] = []
        self.info = ModelInfo(name="scripted", sha256="0" * 64, demo=True)
        self.classes = {41: "cup", 60: "dining table", 63: "laptop", 66: "keyboard"}

    def predict(
        self, images: Sequence[Image.Image], options: DetectorOptions
    ) -> list[list[Detection]]:
        self.calls.append(len(images))
        self.options.append(options)
        return [self.per_image[i % len(self.per_image)] for i in range(len(images))]


def desk_detections() -> list[Detection]:
    return [
        Detection("d1", "laptop", 63, 0.95, Box(100, 140, 490, 420)),
        Detection("d2", "keyboard", 66, 0.9, Box(520, 440, 860, 540)),
        Detection("d3", "cup", 41, 0.88, Box(590, 210, 750, 330)),
        Detection("d4", "dining table", 60, 0.8, Box(40, 60, 920, 600)),
    ]


def test_analyze_returns_every_spec_key(app: Worker, desk_b64: str) -> None:
    result = run(app, {"image": desk_b64, "metadata": {"desk": "A7"}})
    assert "error" not in result, result
    assert set(result) == RESULT_KEYS
    assert result["analysis_id"] == "job-1"
    assert result["metadata"] == {"desk": "A7"}
    assert result["image"]["width"] == 960 and result["image"]["format"] == "jpeg"
    assert result["models"]["detector"]["demo"] is True
    assert result["models"]["clip"]["demo"] is True
    assert "cup" in result["models"]["detector"]["classes"]
    assert result["models"]["device"] == "cpu" and result["models"]["dtype"] == "float32"
    assert result["scene"]["labels"] and sum(result["scene"]["labels"].values()) == pytest.approx(
        1, abs=1e-3
    )
    assert result["persisted"] == {"record": True, "objects": True, "cache": "stored"}
    assert Path(result["artifacts"]["annotated_url"]).is_file()
    assert set(result["timings_ms"]) == {
        "decode",
        "detect",
        "clip",
        "analyze",
        "rules",
        "persist",
        "total",
    }
    assert "embedding" not in result


def test_the_record_and_the_original_are_kept(app: Worker, desk_b64: str) -> None:
    result = run(app, {"image": desk_b64}, job_id="keep-me")
    record = app.stores.records.get_analysis("keep-me")
    assert record is not None
    assert record["image"]["sha256"] == result["image"]["sha256"]
    assert len(record["embedding"]) == app.models.clip.dimension  # stored for find_similar
    assert app.stores.objects.exists(result["artifacts"]["original_key"])
    assert result["artifacts"]["original_key"].startswith(
        f"originals/{result['image']['sha256'][:2]}/"
    )


def test_embedding_only_when_asked(app: Worker, desk_b64: str) -> None:
    result = run(app, {"image": desk_b64, "options": {"return_embedding": True, "cache": False}})
    assert len(result["embedding"]) == app.models.clip.dimension
    assert sum(v * v for v in result["embedding"]) == pytest.approx(1.0, abs=1e-3)


def test_second_identical_job_is_a_cache_hit_with_its_own_record(
    app: Worker, desk_b64: str
) -> None:
    first = run(app, {"image": desk_b64}, job_id="a")
    second = run(app, {"image": desk_b64, "metadata": {"n": 2}}, job_id="b")
    assert first["persisted"]["cache"] == "stored"
    assert second["persisted"]["cache"] == "hit"
    assert second["analysis_id"] == "b" and second["metadata"] == {"n": 2}
    assert second["detections"] == first["detections"]
    assert app.stores.records.get_analysis("b")["cache_hit"] is True
    changed = run(app, {"image": desk_b64, "options": {"conf": 0.5}}, job_id="c")
    assert changed["persisted"]["cache"] == "stored"


def test_store_and_cache_switched_off(app: Worker, desk_b64: str) -> None:
    result = run(app, {"image": desk_b64, "options": {"store": False, "cache": False}}, "x")
    assert result["persisted"] == {"record": False, "objects": False, "cache": "disabled"}
    assert result["artifacts"] == {
        "original_key": None,
        "annotated_key": None,
        "annotated_url": None,
    }
    assert app.stores.records.get_analysis("x") is None


def test_without_clip(app: Worker, desk_b64: str) -> None:
    result = run(app, {"image": desk_b64, "options": {"clip": False}})
    assert result["scene"] is None
    assert result["timings_ms"]["clip"] == 0


def test_mugs_are_measured_checked_by_clip_and_drawn(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    detector = ScriptedDetector([desk_detections()])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    app = make_worker(models, mug_score_min=0.0)
    result = run(app, {"image": desk_b64, "calibration": {"mm_per_px": 0.5}, "rules": []})
    assert len(result["detections"]) == 4
    assert result["surface"]["source"] == "detected:dining table"
    (mug,) = result["mugs"]
    assert mug["id"] == "m1" and mug["detection_id"] == "d3"
    assert 0 <= mug["mug_score"] <= 1
    assert mug["center"] == [670, 270]
    assert mug["center_norm"] == [round(670 / 960, 4), round(270 / 640, 4)]
    assert mug["position_label"] == "center"
    assert mug["edge_distance"] == {"px": 150, "mm": 75}
    assert mug["nearest"][0] == {
        "detection_id": "d1",
        "class": "laptop",
        "gap_px": 100,
        "gap_mm": 50,
    }
    assert result["scale"] == {
        "mm_per_px": 0.5,
        "source": "input",
        "approximate": False,
        "reprojection_error_mm": None,
        "homography": None,
    }
    assert result["positioning"]["optimal_positions"][0]["feasible"] is True
    assert result["positioning"]["optimal_positions"][0]["move"]["distance_px"] == 0
    assert "m1" in result["feedback"]["summary"]
    annotated = Image.open(result["artifacts"]["annotated_url"])
    assert annotated.size == (960, 640)


def test_the_mug_check_keeps_the_mug_and_reports_the_phantom_rejected(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    """The trained demo CLIP at the default MUG_SCORE_MIN: the red mug stays; a "cup" the
    detector might put on the keyboard is rejected, reported with its score, judged by no rule."""
    phantom = Detection("d5", "cup", 41, 0.7, Box(560, 450, 660, 530))  # keys, not a mug
    detector = ScriptedDetector([[*desk_detections(), phantom]])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    assert demo_models.clip is not None and demo_models.clip.info.checks_mugs
    result = run(make_worker(models), {"image": desk_b64})
    assert [m["detection_id"] for m in result["mugs"]] == ["d3"]
    assert result["mugs"][0]["mug_score"] >= 0.5
    assert [r["detection_id"] for r in result["rejected_mugs"]] == ["d5"]
    assert result["rejected_mugs"][0]["mug_score"] < 0.5
    assert {r["mug_id"] for r in result["rules"]} <= {"m1", None}
    assert len(result["detections"]) == 5  # all detections are kept
    assert result["models"]["clip"]["checks_mugs"] is True


def test_a_clip_that_cannot_tell_reports_its_score_but_decides_nothing(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    detector = ScriptedDetector([desk_detections()])
    untrained = copy.copy(demo_models.clip)  # e.g. the random-weight CLIP of older demo folders
    assert untrained is not None
    untrained.info = dataclasses.replace(untrained.info, checks_mugs=False)
    models = ModelSet(device=demo_models.device, detector=detector, clip=untrained)
    kept = run(make_worker(models, mug_score_min=1.0), {"image": desk_b64})
    assert len(kept["mugs"]) == 1 and kept["rejected_mugs"] == []
    assert kept["mugs"][0]["mug_score"] is not None
    assert kept["models"]["clip"]["checks_mugs"] is False
    strict = run(
        make_worker(dataclasses.replace(models, clip=demo_models.clip), mug_score_min=1.0),
        {"image": desk_b64},
    )
    assert strict["mugs"] == [] and len(strict["rejected_mugs"]) == 1
    no_clip = run(
        make_worker(models, mug_score_min=1.0), {"image": desk_b64, "options": {"clip": False}}
    )
    assert no_clip["mugs"][0]["mug_score"] is None  # no CLIP: kept


def test_reference_scale_from_the_laptop(make_worker, demo_models: ModelSet, desk_b64: str) -> None:
    detector = ScriptedDetector([desk_detections()])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    result = run(make_worker(models), {"image": desk_b64, "options": {"clip": False}})
    assert result["scale"]["source"] == "reference:laptop"
    assert result["scale"]["mm_per_px"] == pytest.approx(310 / 390, abs=1e-4)
    assert result["scale"]["approximate"] is True


def test_detector_options_reach_the_detector_and_key_the_cache(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    detector = ScriptedDetector([desk_detections()])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    app = make_worker(models)
    plain = run(app, {"image": desk_b64, "options": {"clip": False}})
    options = {"clip": False, "conf": 0.45, "imgsz": 384, "max_det": 50, "augment": True}
    augmented = run(app, {"image": desk_b64, "options": options})
    single_pass = run(app, {"image": desk_b64, "options": {**options, "augment": False}})
    assert detector.options == [
        DetectorOptions(),
        DetectorOptions(conf=0.45, iou=0.45, imgsz=384, max_det=50, augment=True),
        DetectorOptions(conf=0.45, iou=0.45, imgsz=384, max_det=50, augment=False),
    ]
    assert {plain["persisted"]["cache"], augmented["persisted"]["cache"]} == {"stored"}
    assert single_pass["persisted"]["cache"] == "stored"  # augment alone keys the cache


def test_batch_runs_one_detector_call_and_isolates_a_bad_item(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    detector = ScriptedDetector([desk_detections()])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    app = make_worker(models, mug_score_min=0.0)
    small = encode_image(Image.new("RGB", (320, 240), "white"), "PNG")
    output = run(
        app,
        {
            "images": [
                {"id": "a", "image": desk_b64},
                {"id": "broken", "image": "not base64!"},
                {"id": "c", "image": small},
                {"id": "d", "image": desk_b64},
            ],
            "options": {"cache": False},
        },
        job_id="batch",
    )
    assert detector.calls == [3]  # the good images, of two sizes
    results = {r["id"]: r for r in output["results"]}
    assert results["broken"]["error"].startswith("invalid_image: images[1].image:")
    assert results["broken"]["analysis_id"] == "batch:broken"
    assert results["a"]["analysis_id"] == "batch:a"
    assert set(results["c"]) == RESULT_KEYS | {"id"}
    summary = output["summary"]
    assert (summary["images"], summary["ok"], summary["failed"]) == (4, 3, 1)
    assert summary["mugs"] == 3
    assert app.stores.records.get_analysis("batch:c") is not None


def test_batch_item_ids_default_to_their_index(app: Worker, desk_b64: str) -> None:
    output = run(app, {"images": [{"image": desk_b64}, {"image": desk_b64}]}, job_id="j")
    assert [r["analysis_id"] for r in output["results"]] == ["j:0", "j:1"]


def test_batch_larger_than_max_batch_is_refused(make_worker, desk_b64: str) -> None:
    app = make_worker(max_batch=2)
    output = run(app, {"images": [{"image": desk_b64}] * 3})
    assert output == {
        "error": "invalid_input: images: at most 2 images per job (got 3); split the batch"
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "invalid_input: give exactly one of 'image', 'image_url', 'image_key' or 'images'"),
        ({"image": "x", "image_url": "https://a.b/c.jpg"}, "invalid_input: give exactly one"),
        ({"image": "x", "colour": "red"}, "invalid_input: colour: unknown key"),
        ({"image": "x", "options": {"conf": 2}}, "invalid_input: options.conf:"),
        ({"image": "x", "options": {"imgsz": "big"}}, "invalid_input: options.imgsz:"),
        ({"image": "x", "options": {"augment": 3}}, "invalid_input: options.augment:"),
        ({"image": "x", "surface": [[0, 0], [2, 0], [1, 1]]}, "invalid_input: surface:"),
        ({"image": "x", "calibration": {}}, "invalid_input: calibration:"),
        ({"image": "x", "calibration": {"mm_per_px": -1}}, "invalid_input: calibration.mm_per_px"),
        ({"images": []}, "invalid_input: images:"),
        ({"images": [{"id": "a/b", "image": "x"}]}, "invalid_input: images.0.id:"),
        ({"images": [{"id": "a", "image": "x"}, {"id": "a", "image": "x"}]}, "invalid_input"),
        ({"image": "x", "metadata": "desk"}, "invalid_input: metadata:"),
        ({"image": "x", "metadata": {"n": 2**64}}, "invalid_input: metadata: n: integers"),
        ({"image": "x", "metadata": {"n": float("nan")}}, "invalid_input: metadata: n: numbers"),
        (
            {"image": "x", "metadata": {"$set": 1}},
            "invalid_input: metadata: keys may not",
        ),
        ({"image": "x", "metadata": {"a": "\ud800"}}, "invalid_input: metadata: a: text"),
        (
            {"image": "x", "metadata": {"a": "x" * 70_000}},
            "invalid_input: metadata: at most 65536 bytes",
        ),
        ({"image": "x", "options": {"max_det": 5000}}, "invalid_input: options.max_det:"),
        (
            {"action": "evaluate", "detections": [], "image_size": [10**400, 5]},
            "invalid_input: image_size",
        ),
        (
            {"action": "parse_rules", "rules": [{"type": "count", "max": 10**400}]},
            "invalid_input: rules[0].count.max",
        ),
        ({"image": "x", "rules": ["Keep mugs near the moon"]}, "rule_parse_error: rules[0]:"),
        ({"image": "x", "rules": [{"type": "teleport"}]}, "invalid_input: rules[0]"),
        ({"image": "x", "rule_set": "nope"}, "not_found: rule_set: no rule set named 'nope'"),
        ({"image": ""}, "invalid_image: image:"),
        ({"action": "teleport"}, "invalid_input: action: unknown action 'teleport'"),
        ({"action": "evaluate"}, "invalid_input: give either 'analysis_id' or 'detections'"),
        ({"action": "find_similar"}, "invalid_input: give exactly one of"),
        ({"action": "health", "verbose": True}, "invalid_input: verbose: unknown key"),
    ],
)
def test_bad_input_gets_a_clear_error(app: Worker, payload: dict, expected: str) -> None:
    output = run(app, payload)
    assert set(output) == {"error"}
    assert isinstance(output["error"], str)
    assert output["error"].startswith(expected), output["error"]


@pytest.mark.parametrize("job_input", [None, "analyze", ["image"], 42])
def test_input_that_is_not_an_object(app: Worker, job_input: object) -> None:
    assert app.handle({"id": "j", "input": job_input}) == {
        "error": "invalid_input: input: expected a JSON object"
    }


def test_an_internal_failure_is_reported_and_the_next_job_still_runs(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    class Exploding(ScriptedDetector):
        def predict(self, images, options):
            raise RuntimeError("CUDA out of memory")

    models = ModelSet(device=demo_models.device, detector=Exploding([]), clip=demo_models.clip)
    app = make_worker(models)
    output = run(app, {"image": desk_b64}, job_id="boom")
    assert output == {"error": "internal_error: the worker failed on job boom; see the worker log"}
    app.models.detector = ScriptedDetector([desk_detections()])
    assert "error" not in run(app, {"image": desk_b64})


def test_missing_models_give_model_unavailable_and_health_says_why(
    make_worker, demo_models: ModelSet, desk_b64: str, tmp_path: Path
) -> None:
    missing = ModelSet(device=demo_models.device, problems={"detector": "weights not found at /x"})
    app = make_worker(missing)
    assert run(app, {"image": desk_b64}) == {"error": "model_unavailable: weights not found at /x"}
    health = run(app, {"action": "health"})
    assert health["status"] == "degraded"
    assert health["models"]["detector"] == {"loaded": False, "problem": "weights not found at /x"}


def test_health(app: Worker) -> None:
    health = run(app, {"action": "health"})
    assert health["status"] == "ok"
    assert health["models"]["detector"]["loaded"] is True
    assert len(health["models"]["detector"]["sha256"]) == 64
    assert health["models"]["clip"]["demo"] is True
    assert health["stores"] == {
        "records": {"backend": "json", "ok": True},
        "objects": {"backend": "local", "ok": True},
        "cache": {"backend": "memory", "ok": True},
    }
    assert health["versions"]["torch"] == "2.14.1"


def test_image_key_reads_from_the_objects_store(app: Worker, desk_b64: str) -> None:
    first = run(app, {"image": desk_b64, "options": {"cache": False}})
    key = first["artifacts"]["original_key"]
    again = run(app, {"image_key": key, "options": {"cache": False}})
    assert again["image"]["source"] == "key"
    assert again["image"]["key"] == key
    assert again["image"]["sha256"] == first["image"]["sha256"]


def test_greyscale_png_is_analysed(app: Worker) -> None:
    image = Image.new("L", (400, 300), 200)
    ImageDraw.Draw(image).ellipse((100, 100, 180, 180), fill=40)
    result = run(app, {"image": "data:image/png;base64," + encode_image(image, "PNG")})
    assert result["image"]["format"] == "png"
    assert (result["image"]["width"], result["image"]["height"]) == (400, 300)


def scripted_app(make_worker, demo_models: ModelSet, **overrides: object) -> Worker:
    detector = ScriptedDetector([desk_detections()])
    models = ModelSet(device=demo_models.device, detector=detector, clip=demo_models.clip)
    return make_worker(models, **{"mug_score_min": 0.0, **overrides})


def test_default_rules_judge_the_mug_and_say_how_to_move_it(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    app = scripted_app(make_worker, demo_models)
    result = run(app, {"image": desk_b64, "calibration": {"mm_per_px": 1.0}})
    by_type = {
        (r["type"], r["text"] or "", str(r["required"]["value"])): r for r in result["rules"]
    }
    assert len(result["rules"]) == 4  # the default set: laptop, keyboard, phone, edge
    laptop = next(r for r in result["rules"] if r["required"]["value"] == 15)
    assert laptop["status"] == "fail"
    assert laptop["measured"] == {"value": 10.0, "unit": "cm"}  # 100 px at 1 mm/px
    assert laptop["required"] == {"op": ">=", "value": 15.0, "unit": "cm"}
    assert laptop["adjustment"]["distance_mm"] == pytest.approx(50, abs=0.05)
    edge = next(r for r in result["rules"] if r["type"] == "edge_margin")
    assert edge["severity"] == "critical" and edge["status"] == "pass"
    phone = next(r for r in result["rules"] if "phone" in r["message"])
    assert phone["status"] == "pass"  # no phone in view
    positioning = result["positioning"]
    assert positioning["compliant"] is False
    assert positioning["safety_score"] == pytest.approx(1 - 2 / 9, abs=1e-4)
    (optimal,) = positioning["optimal_positions"]
    assert optimal["feasible"] is True and optimal["move"]["distance_px"] > 0
    (needed,) = positioning["adjustments_needed"]
    assert needed["mug_id"] == "m1" and "away from the laptop" in needed["reason"]
    assert result["feedback"]["summary"].startswith("The mug needs moving: m1 is too close")
    assert result["feedback"]["recommendations"][0].startswith("Move mug m1 ")
    assert by_type  # every result is keyed by its rule


def test_rules_in_the_job_and_a_clip_attribute(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    app = scripted_app(make_worker, demo_models)
    result = run(
        app,
        {
            "image": desk_b64,
            "rules": [
                "Keep mugs at least 50 px away from laptops",
                "The mug should be on a coaster",
                {"type": "count", "max": 1, "severity": "info"},
            ],
        },
    )
    statuses = [(r["type"], r["status"]) for r in result["rules"]]
    assert statuses[0] == ("min_distance", "pass")
    assert statuses[1][0] == "attribute" and statuses[1][1] in ("pass", "fail")
    assert result["rules"][1]["measured"]["unit"] == "probability"
    assert statuses[2] == ("count", "pass")
    assert result["rules"][0]["text"] == "Keep mugs at least 50 px away from laptops"
    no_clip = run(
        app,
        {
            "image": desk_b64,
            "rules": ["The mug should be on a coaster"],
            "options": {"clip": False},
        },
    )
    assert no_clip["rules"][0]["status"] == "unknown"


def test_changing_a_stored_rule_set_changes_the_next_result(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    app = scripted_app(make_worker, demo_models)
    put = {"action": "put_rule_set", "name": "desk", "rules": ["Keep mugs 50 px from laptops"]}
    assert run(app, put)["version"] == 1
    first = run(app, {"image": desk_b64, "rule_set": "desk"}, job_id="one")
    assert first["rules"][0]["status"] == "pass"
    again = run(app, {"image": desk_b64, "rule_set": "desk"}, job_id="two")
    assert again["persisted"]["cache"] == "hit"
    changed = run(app, {**put, "rules": ["Keep mugs 150 px from laptops"]})
    assert changed["version"] == 2
    after = run(app, {"image": desk_b64, "rule_set": "desk"}, job_id="three")
    assert after["persisted"]["cache"] == "stored"
    assert after["rules"][0]["status"] == "fail"
    assert after["rules"][0]["rule_id"] != first["rules"][0]["rule_id"]


def test_a_stored_default_set_overrides_the_built_in_one(
    make_worker, demo_models: ModelSet, desk_b64: str
) -> None:
    app = scripted_app(make_worker, demo_models)
    run(app, {"action": "put_rule_set", "name": "default", "rules": ["At most 3 mugs"]})
    result = run(app, {"image": desk_b64})
    assert [r["type"] for r in result["rules"]] == ["count"]


def test_torch_threads_are_restored_after_a_predict(app: Worker, desk_b64: str) -> None:
    import torch

    run(app, {"image": desk_b64, "options": {"cache": False}})
    assert torch.get_num_threads() == app.models.device.threads


def test_batch_items_carry_their_own_metadata(app: Worker, desk_b64: str) -> None:
    output = run(
        app,
        {
            "images": [
                {"id": "a", "image": desk_b64, "metadata": {"desk": "A1"}},
                {"id": "b", "image": desk_b64},
            ],
            "metadata": {"batch": "night", "desk": "unknown"},
            "options": {"cache": False},
        },
        job_id="meta",
    )
    first, second = output["results"]
    assert first["metadata"] == {"batch": "night", "desk": "A1"}
    assert second["metadata"] == {"batch": "night", "desk": "unknown"}
    assert app.stores.records.get_analysis("meta:a")["metadata"]["desk"] == "A1"


def test_a_cache_hit_reports_this_job_s_image_source(app: Worker, desk_b64: str) -> None:
    first = run(app, {"image": desk_b64}, job_id="src-1")
    key = first["artifacts"]["original_key"]
    by_key = run(app, {"image_key": key}, job_id="src-2")
    assert by_key["persisted"]["cache"] == "hit"
    assert (by_key["image"]["source"], by_key["image"]["key"]) == ("key", key)
    again = run(app, {"image": desk_b64}, job_id="src-3")
    assert again["image"]["source"] == "base64"


def test_a_batch_reports_its_progress_as_images_finish(app: Worker, desk_b64: str) -> None:
    updates: list[dict[str, Any]] = []
    images = [{"id": f"i{n}", "image": desk_b64} for n in range(3)]
    images.insert(1, {"id": "bad", "image": "bm90IGFuIGltYWdl"})
    job = {"id": "b", "input": {"images": images, "options": {"imgsz": 320}}}

    output = app.handle(job, updates.append)

    assert output["summary"]["ok"] == 3
    assert (updates[0]["stage"], updates[0]["done"]) == ("decode", 0)  # the first goes at once
    order = [(STAGES.index(u["stage"]), u["done"]) for u in updates]
    assert order == sorted(order)
    assert all(u["images"] == 4 and u["done"] < 4 for u in updates)


def test_one_image_reports_no_progress(app: Worker, desk_b64: str) -> None:
    updates: list[dict[str, Any]] = []
    app.handle(
        {"id": "one", "input": {"image": desk_b64, "options": {"imgsz": 320}}}, updates.append
    )
    assert updates == []
