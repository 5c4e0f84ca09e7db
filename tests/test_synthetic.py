"""training.synthetic: generated scenes are deterministic, their labels match what is drawn, their
truth matches the project's own rules; and the training and accuracy scripts run end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from models.demo import DEMO_AUGMENT, DEMO_CONF
from models.layout import read_manifest
from positioning.geometry import Box
from positioning.scene import Detection, build_scene
from rules.judge import judge
from rules.model import rule_from_dict
from tests.conftest import ROOT
from training.synthetic import (
    COCO_IDS,
    FIXED_RULES,
    SceneOptions,
    compose,
    generate_scene,
    read_truths,
    render,
    write_scenes,
)
from training.synthetic.objects import Mug

SMALL = SceneOptions(widths=(480, 640))
TOP = SceneOptions(widths=(480, 640), view="top")
SLANTED = SceneOptions(widths=(480, 640), view="slanted")


def test_a_seed_gives_the_same_scene_every_time() -> None:
    first, again = generate_scene(3, 0, SMALL), generate_scene(3, 0, SMALL)
    assert first.jpeg() == again.jpeg()
    assert first.yolo_labels() == again.yolo_labels()
    assert first.truth == again.truth
    assert generate_scene(4, 0, SMALL).jpeg() != first.jpeg()
    assert generate_scene(3, 1, SMALL).jpeg() != first.jpeg()


def test_every_label_line_is_a_coco_class_with_normalised_coordinates() -> None:
    for index in range(6):
        scene = generate_scene(11, index, SMALL)
        lines = scene.yolo_labels().splitlines()
        assert len(lines) == len(scene.labels) >= 1  # the table is always labelled
        for line in lines:
            class_id, *numbers = line.split()
            assert int(class_id) in COCO_IDS.values()
            cx, cy, w, h = map(float, numbers)
            assert 0 < w <= 1 and 0 < h <= 1
            assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6
            assert cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6


def test_coco_ids_are_ultralytics_coco_names() -> None:
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.submodule_search_locations
    coco = Path(next(iter(spec.submodule_search_locations))) / "cfg/datasets/coco.yaml"
    names = yaml.safe_load(coco.read_text())["names"]
    assert {name: names[class_id] for name, class_id in COCO_IDS.items()} == {
        name: name for name in COCO_IDS
    }


@pytest.mark.parametrize(("options", "seed"), [(TOP, 21), (SLANTED, 22)])
def test_each_mug_box_holds_the_drawn_mug(options: SceneOptions, seed: int) -> None:
    """Drawing the same scene without its mugs changes the centre of every mug box, and little
    far from the mugs (the light, noise and table are drawn from the same random state)."""
    checked = 0
    for index in range(4):
        composition = compose(seed, index, options)
        mugs = [t for t in composition.things if isinstance(t, Mug)]
        scene = generate_scene(seed, index, options)
        boxes = [label.box for label in scene.labels if label.class_name == "cup"]
        assert len(boxes) == len(mugs)
        if not mugs:
            continue
        with_mugs = np.asarray(render(composition)[0], dtype=float)
        without = [t for t in composition.things if not isinstance(t, Mug)]
        difference = np.abs(with_mugs - np.asarray(render(composition, without)[0], dtype=float))
        height, width = difference.shape[:2]
        away = np.ones((height, width), dtype=bool)
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            w, h = x2 - x1, y2 - y1
            middle = difference[
                round(y1 + 0.3 * h) : round(y2 - 0.3 * h), round(x1 + 0.3 * w) : round(x2 - 0.3 * w)
            ]
            assert middle.mean() > 15, (index, (x1, y1, x2, y2))
            # grown by a mug's width on every side: shadows fall there
            away[max(0, round(y1 - h)) : round(y2 + h), max(0, round(x1 - w)) : round(x2 + w)] = (
                False
            )
            checked += 1
        assert difference[away].mean() < 3
    assert checked >= 3


def test_slanted_scenes_keep_every_box_inside_the_image() -> None:
    for index in range(6):
        scene = generate_scene(31, index, SLANTED)
        width, height = scene.image.size
        assert scene.truth["view"] == "slanted"
        for label in scene.labels:
            x1, y1, x2, y2 = label.box
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, label
            if label.class_name != "dining table":
                # placed whole in view: the box is the object's own outline, not cut by the border
                assert x1 > 0 and y1 > 0 and x2 < width and y2 < height, label


def test_the_true_scale_matches_the_drawn_sizes() -> None:
    """Top-down: one scale, the camera's; a mug box measured with it is a mug's size in mm."""
    widths = []
    for index in range(6):
        truth = generate_scene(41, index, TOP).truth
        camera = truth["camera"]
        assert truth["mm_per_px"] == pytest.approx(camera["height_mm"] / camera["focal_px"], 1e-3)
        assert truth["scale"]["mm_per_px_along_y"] == pytest.approx(truth["mm_per_px"], 1e-4)
        for obj in truth["objects"]:
            if obj["class"] == "cup":
                x1, y1, x2, y2 = obj["box"]
                widths.append(max(x2 - x1, y2 - y1) * truth["mm_per_px"])
    assert widths
    # body 80-95 mm (up to 12% wider at a flared rim, which is also nearer the camera) + handle
    assert all(80 <= w <= 175 for w in widths), widths


def test_truth_verdicts_are_what_the_rules_say_about_the_true_boxes() -> None:
    """Re-judge each scene from its JSON alone with rules.judge; also check the mix of verdicts."""
    statuses: Counter[tuple[str, str]] = Counter()
    for index in range(12):
        truth: dict[str, Any] = json.loads(json.dumps(generate_scene(51, index, SMALL).truth))
        width, height = truth["image"]["width"], truth["image"]["height"]
        detections = [
            Detection(f"g{i}", o["class"], o["class_id"], 1.0, Box.from_list(o["box"]))
            for i, o in enumerate(truth["objects"])
        ]
        mugs = [(d, None) for d in detections if d.class_name == "cup"]
        scene = build_scene(width, height, detections, mugs, mm_per_px=truth["mm_per_px"])
        assert scene.surface.box.as_list() == truth["table"]["box"]
        judgement = judge(scene, [rule_from_dict(rule) for rule in truth["rules"]])
        boxes = {mug.id: mug.box.as_list() for mug in scene.mugs}
        expected = sorted(
            (r.rule.rule_id, boxes[r.mug_id], r.status) for r in judgement.results if r.mug_id
        )
        recorded = sorted((v["rule_id"], v["mug_box"], v["status"]) for v in truth["verdicts"])
        assert recorded == expected
        assert truth["compliant"] == judgement.compliant
        statuses.update((v["rule_id"], v["status"]) for v in truth["verdicts"])
    for rule in ("laptop-15cm", "edge-5cm"):
        assert statuses[(rule, "pass")] and statuses[(rule, "fail")], statuses


def test_a_written_set_is_the_same_from_one_process_or_two(tmp_path: Path) -> None:
    one = write_scenes(tmp_path / "one", 4, 61, SMALL, jobs=1)
    two = write_scenes(tmp_path / "two", 4, 61, SMALL, jobs=2)
    assert one == two
    for sub in ("images", "labels", "truth"):
        names = sorted(p.name for p in (tmp_path / "one" / sub).iterdir())
        assert len(names) == 4
        for name in names:
            assert (tmp_path / "one" / sub / name).read_bytes() == (
                tmp_path / "two" / sub / name
            ).read_bytes()
    truths = read_truths(tmp_path / "one")
    assert [t["seed"] for t in truths] == [[61, i] for i in range(4)]
    assert json.loads((tmp_path / "one" / "scenes.json").read_text())["count"] == 4


def test_generate_scenes_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.generate_scenes import main

    args = ["--out", str(tmp_path), "--count", "2", "--seed", "5", "--jobs", "1"]
    assert main([*args, "--imgsz-range", "480", "500", "--view", "top"]) == 0
    assert "2 scenes (seed 5)" in capsys.readouterr().out
    for truth in read_truths(tmp_path):
        assert truth["view"] == "top"
        assert 480 <= truth["image"]["width"] <= 500
        assert (tmp_path / truth["file"]).is_file()


def test_accuracy_scores_the_true_boxes_as_perfect(tmp_path: Path) -> None:
    """The worker's evaluate action on the true boxes stands in for a perfect detector."""
    from models.runtime import Device
    from training.metrics import measure
    from worker.actions import Worker
    from worker.runtime import ModelSet, open_stores
    from worker.settings import Settings

    settings = Settings(model_dir=tmp_path, data_dir=tmp_path / "data")
    worker = Worker(settings, ModelSet(device=Device("cpu", False, 1)), open_stores(settings))
    truths = [generate_scene(71, index, SMALL).truth for index in range(8)]

    def evaluate(truth: dict[str, Any], calibrated: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "action": "evaluate",
            "image_size": [truth["image"]["width"], truth["image"]["height"]],
            "detections": [{"class": o["class"], "box": o["box"]} for o in truth["objects"]],
            "rules": list(FIXED_RULES),
        }
        if calibrated:
            payload["calibration"] = {"mm_per_px": truth["mm_per_px"]}
        return worker.handle({"id": "perfect", "input": payload})

    calibrated = [evaluate(truth, True) for truth in truths]
    uncalibrated = [evaluate(truth, False) for truth in truths]
    report = measure(truths, calibrated, uncalibrated)
    mugs = report["mugs"]["all"]
    assert mugs["true"] > 0 and mugs["precision"] == mugs["recall"] == 1.0
    assert report["centre_error"]["mean_px"] == 0
    assert report["verdicts"]["agreement"] == 1.0 and not report["disagreements"]
    estimate = report["scale"]["reference_estimate"]
    assert estimate["found"] > 0 and estimate["median_rel_error"] < 0.5

    first = next(i for i, t in enumerate(truths) if any(o["class"] == "cup" for o in t["objects"]))
    calibrated[first]["mugs"] = calibrated[first]["mugs"][1:]  # the worker misses a mug
    report = measure(truths, calibrated, uncalibrated)
    assert report["mugs"]["all"]["recall"] < 1.0
    assert report["disagreements"]["mug missed"] == len(FIXED_RULES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest real training run, through the script as a person runs it."""
    out = tmp_path_factory.mktemp("trained")
    command = [sys.executable, "-m", "scripts.train_detector", "--out", str(out)]
    command += ["--work", str(out / "work"), "--epochs", "1", "--train-count", "8"]
    command += ["--val-count", "4", "--imgsz", "160", "--imgsz-range", "480", "640"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_train_detector_writes_loadable_weights_and_records_them(trained: Path) -> None:
    from ultralytics import YOLO

    weights = trained / "yolov8s.pt"
    assert 3e6 < weights.stat().st_size < 10e6  # stripped: no optimizer state
    model = YOLO(str(weights), task="detect")
    assert len(model.names) == 80 and model.names[41] == "cup"
    entry = read_manifest(trained)["yolov8s.pt"]
    assert entry["demo"] is True and "synthetic" in str(entry["name"])
    record = json.loads((trained / "yolov8s.pt.train.json").read_text())
    train, val = record["data"]["train"], record["data"]["val"]
    assert (train["seed"], train["count"], val["seed"], val["count"]) == (1, 8, 2, 4)
    assert record["epochs"] == 1 and record["imgsz"] == 160
    assert (record["optimizer"], record["lr0"]) == ("AdamW", 0.001)
    assert set(record["val"]) >= {"mAP50", "precision", "recall", "per_class"}
    assert set(record["versions"]) >= {"ultralytics", "torch"}


@pytest.mark.slow
def test_shipped_weights_become_the_demo_detector(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import demo
    from training.detector import ship

    record = json.loads((trained / "yolov8s.pt.train.json").read_text())
    target = tmp_path / "weights" / "desk-detector-yolov8n.pt"
    target.parent.mkdir()
    ship(trained / "yolov8s.pt", record, target, target.with_suffix(".train.json"))
    monkeypatch.setattr(demo, "DEMO_DETECTOR", target)
    monkeypatch.setattr(demo, "DEMO_DETECTOR_RECORD", target.with_suffix(".train.json"))
    installed = demo.build_demo_detector(tmp_path / "models")
    assert installed.read_bytes() == (trained / "yolov8s.pt").read_bytes()
    entry = read_manifest(tmp_path / "models")["yolov8s.pt"]
    assert entry["name"] == record["name"] and entry["demo"] is True
    assert str(entry["source"]).startswith("models/weights/desk-detector-yolov8n.pt: ")

    target.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # not the recorded file
    with pytest.raises(RuntimeError, match="is not the file"):
        demo.build_demo_detector(tmp_path / "again")


def test_ship_refuses_a_detector_trained_on_other_data(tmp_path: Path) -> None:
    from scripts.train_detector import main

    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(tmp_path), "--data", str(tmp_path), "--ship"])
    assert stopped.value.code == 2


@pytest.mark.slow
def test_train_detector_fine_tunes_on_a_folder_of_labelled_photos(
    trained: Path, tmp_path: Path
) -> None:
    """--data with images/ and labels/ side by side: split 90/10, started from given weights."""
    write_scenes(tmp_path / "mine", 6, 81, SMALL)
    out = tmp_path / "models"
    command = [sys.executable, "-m", "scripts.train_detector", "--out", str(out)]
    command += ["--data", str(tmp_path / "mine"), "--weights", str(trained / "yolov8s.pt")]
    command += ["--epochs", "1", "--imgsz", "160", "--work", str(tmp_path / "work")]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    entry = read_manifest(out)["yolov8s.pt"]
    assert entry["demo"] is False and entry["name"] == "yolov8n fine-tuned on mine"
    record = json.loads((out / "yolov8s.pt.train.json").read_text())
    assert record["data"]["kind"] == "user"
    assert (record["data"]["train_count"], record["data"]["val_count"]) == (5, 1)
    assert record["start_from"] == str(trained / "yolov8s.pt")


@pytest.mark.slow
def test_accuracy_runs_the_worker_on_held_out_scenes(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.accuracy import main

    # the folder holds the detector alone: no CLIP to check mugs with
    argv = ["--model-dir", str(trained), "--count", "3", "--json", "--jobs", "1", "--no-clip"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenes"] == 3 and report["failed_jobs"] == 0
    assert report["setup"]["seed"] == 900_001
    assert (report["setup"]["conf"], report["setup"]["augment"]) == (DEMO_CONF, DEMO_AUGMENT)
    assert report["mugs"]["all"]["true"] > 0
    verdicts = report["verdicts"]
    assert verdicts["pairs"] == sum(v["pairs"] for v in verdicts["by_type"].values()) > 0
    assert 0 <= verdicts["agreement"] <= 1
    assert set(verdicts["by_rule"]) == {rule["id"] for rule in FIXED_RULES}


def test_a_generated_table_cut_by_the_picture_has_no_edge_on_the_cut_side() -> None:
    """SPEC 10 on generated scenes: crop each scene just left of a mug, through the table; the
    cut is where the picture ends, so the mug's edge distance is to the sides still in view."""
    cropped_scenes = 0
    for index in range(12):
        truth = generate_scene(51, index, SMALL).truth
        width, height = truth["image"]["width"], truth["image"]["height"]
        table = Box.from_list(truth["table"]["box"])
        cups = [Box.from_list(o["box"]) for o in truth["objects"] if o["class"] == "cup"]
        cup = min(cups, key=lambda b: b.x1, default=None)
        if cup is None or cup.x1 - table.x1 < 20:
            continue
        cut = cup.x1 - 5  # the new left border: 5 px left of the cup, inside the table
        detections = []
        for i, o in enumerate(truth["objects"]):
            box = Box.from_list(o["box"])
            if box.x2 <= cut:
                continue  # left out of the picture
            shifted = Box(max(box.x1 - cut, 0.0), box.y1, box.x2 - cut, box.y2)
            detections.append(Detection(f"g{i}", o["class"], o["class_id"], 1.0, shifted))
        mugs = [(d, None) for d in detections if d.class_name == "cup"]
        scene = build_scene(int(width - cut), height, detections, mugs, mm_per_px=1.0)
        assert "left" not in scene.surface.visible_sides
        (edge_rule,) = [rule_from_dict(r) for r in truth["rules"] if r["type"] == "edge_margin"]
        results = {r.mug_id: r for r in judge(scene, [edge_rule]).results}
        (near_cut,) = [m for m in scene.mugs if m.box.x1 == pytest.approx(5.0)]
        # measured to a side in view (the generator also puts mugs over those), never the cut
        assert near_cut.edge_distance_px != pytest.approx(5.0)
        assert all(edge[0] > 0 for _, edge in results[near_cut.id].marks())
        cropped_scenes += 1
    assert cropped_scenes >= 3
