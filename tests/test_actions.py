"""The model-free actions: evaluate, parse_rules and the rule-set actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.runtime import Device
from worker.actions import Worker
from worker.runtime import ModelSet

NO_MODELS = ModelSet(device=Device(name="cpu", half=False, threads=1))

# A 1000 x 800 picture of a table with a strip of floor around it (its edges are in view)
DESK = [
    {"class": "dining table", "box": [40, 40, 960, 760]},
    {"class": "laptop", "box": [100, 100, 400, 300]},
    {"class": "keyboard", "box": [450, 600, 850, 700]},
    {"class": "cup", "box": [460, 150, 540, 230], "confidence": 0.8, "id": "mug-a"},
]


@pytest.fixture
def app(make_worker) -> Worker:
    return make_worker(NO_MODELS)


def run(app: Worker, payload: dict[str, Any]) -> dict[str, Any]:
    output = app.handle({"id": "job", "input": payload})
    json.dumps(output, allow_nan=False)
    return output


def test_evaluate_given_detections(app: Worker) -> None:
    output = run(
        app,
        {
            "action": "evaluate",
            "detections": DESK,
            "image_size": [1000, 800],
            "calibration": {"mm_per_px": 0.5},
            "rules": ["Keep mugs at least 5 cm from the laptop", "Keep mugs 2 cm from the edge"],
        },
    )
    assert set(output) == {
        "analysis_id", "image_size", "detections", "scale", "surface", "mugs", "rejected_mugs",
        "rules", "positioning", "feedback", "timings_ms",
    }  # fmt: skip
    assert output["mugs"][0]["detection_id"] == "mug-a"
    assert output["mugs"][0]["mug_score"] is None
    first, second = output["rules"]
    assert (first["status"], first["measured"], first["required"]) == (
        "fail",
        {"value": 3.0, "unit": "cm"},
        {"op": ">=", "value": 5.0, "unit": "cm"},
    )
    assert first["adjustment"]["dx_mm"] == pytest.approx(20, abs=0.1)
    assert first["adjustment"]["direction"] == "right"
    assert second["status"] == "pass"
    assert output["feedback"]["recommendations"] == [
        "Move mug m1 20 mm to the right, away from the laptop."
    ]


def test_evaluate_without_a_scale_says_unknown(make_worker) -> None:
    app = make_worker(NO_MODELS, reference_sizes_mm={})  # no reference object to measure by
    output = run(
        app,
        {
            "action": "evaluate",
            "detections": DESK,
            "image_size": [1000, 800],
            "rules": ["Keep mugs 15 cm from laptops"],
        },
    )
    (rule,) = output["rules"]
    assert rule["status"] == "unknown"
    assert rule["measured"] == {"value": 60.0, "unit": "px"}
    assert output["positioning"]["safety_score"] == 1.0
    assert any("Give a scale" in tip for tip in output["feedback"]["recommendations"])


def test_evaluate_reference_scale_from_given_detections(app: Worker) -> None:
    output = run(
        app,
        {"action": "evaluate", "detections": DESK, "image_size": [1000, 800], "rules": []},
    )
    assert output["scale"]["source"] == "reference:laptop"
    assert output["scale"]["mm_per_px"] == pytest.approx(310 / 300, abs=1e-4)


def test_evaluate_a_stored_analysis_by_id(app: Worker) -> None:
    record = {
        "analysis_id": "stored-1",
        "image": {"width": 1000, "height": 800},
        "detections": [
            {"id": "d1", "class": "laptop", "class_id": 63, "confidence": 0.9, "box": [100, 100, 400, 300]},
            {"id": "d2", "class": "cup", "class_id": 41, "confidence": 0.8, "box": [460, 150, 540, 230]},
            {"id": "d3", "class": "cup", "class_id": 41, "confidence": 0.4, "box": [800, 500, 860, 560]},
        ],
        "mugs": [{"detection_id": "d2", "mug_score": 0.9}],
        "rejected_mugs": [{"detection_id": "d3", "confidence": 0.4, "mug_score": 0.1}],
        "scale": {"mm_per_px": 0.5, "source": "input", "approximate": False},
        "surface": {"polygon_norm": [[0, 0], [1, 0], [1, 1], [0, 1]], "source": "image"},
    }  # fmt: skip
    app.stores.records.put_analysis(record)
    output = run(
        app,
        {"action": "evaluate", "analysis_id": "stored-1", "rules": ["Keep mugs 5 cm from laptops"]},
    )
    assert output["analysis_id"] == "stored-1"
    assert [m["detection_id"] for m in output["mugs"]] == ["d2"]
    assert output["mugs"][0]["mug_score"] == 0.9
    assert output["rejected_mugs"] == [{"detection_id": "d3", "confidence": 0.4, "mug_score": 0.1}]
    assert output["scale"]["mm_per_px"] == 0.5
    assert output["rules"][0]["status"] == "fail"
    missing = run(app, {"action": "evaluate", "analysis_id": "nope"})
    assert missing == {"error": "not_found: analysis_id: no analysis 'nope'"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"action": "evaluate", "detections": DESK}, "invalid_input: image_size: required"),
        (
            {
                "action": "evaluate",
                "detections": [{"class": "cup", "box": [5, 5, 1, 1]}],
                "image_size": [10, 10],
            },
            "invalid_input: detections.0: box: expected [x1, y1, x2, y2]",
        ),
        (
            {"action": "evaluate", "detections": DESK, "image_size": [100, 100], "analysis_id": "a"},
            "invalid_input: give either",
        ),
        ({"action": "parse_rules"}, "invalid_input: rules: Field required"),
        ({"action": "parse_rules", "rules": ["Keep the moon close"]}, "rule_parse_error: rules[0]:"),
        ({"action": "put_rule_set", "name": "../etc", "rules": ["At most 2 mugs"]}, "invalid_input: name:"),
        ({"action": "get_rule_set", "name": "missing"}, "not_found: rule_set: no rule set named 'missing'"),
        ({"action": "delete_rule_set", "name": "missing"}, "not_found: name: no rule set named 'missing'"),
        ({"action": "delete_rule_set", "name": "default"}, "invalid_input: name: the built-in"),
    ],
)  # fmt: skip
def test_bad_requests(app: Worker, payload: dict, expected: str) -> None:
    output = run(app, payload)
    assert output["error"].startswith(expected), output


def test_parse_rules_keeps_input_order_and_text(app: Worker) -> None:
    output = run(
        app,
        {
            "action": "parse_rules",
            "rules": [
                "Keep mugs at least 6 inches away from laptops",
                {"type": "count", "max": 2},
                "Critical: keep cups 20 cm away from the laptop",
            ],
        },
    )
    first, second, third = output["rules"]
    assert (first["type"], first["object"], first["distance"]) == (
        "min_distance",
        "laptop",
        {"value": 6.0, "unit": "in"},
    )
    assert first["text"] == "Keep mugs at least 6 inches away from laptops"
    assert (second["type"], second["max"]) == ("count", 2)
    assert third["severity"] == "critical"
    assert all(rule["id"].startswith("r-") for rule in output["rules"])


def test_rule_set_lifecycle(app: Worker) -> None:
    listed = run(app, {"action": "list_rule_sets"})["rule_sets"]
    assert [s["name"] for s in listed] == ["default"] and listed[0]["built_in"] is True
    default = run(app, {"action": "get_rule_set", "name": "default"})
    assert len(default["rules"]) == 4 and default["version"] == 0
    created = run(
        app,
        {
            "action": "put_rule_set",
            "name": "kitchen",
            "description": "Kitchen counters",
            "rules": ["Keep mugs 10 cm from the edge", {"type": "count", "max": 4}],
        },
    )
    assert (created["name"], created["version"], len(created["rules"])) == ("kitchen", 1, 2)
    assert created["rules"][0]["text"] == "Keep mugs 10 cm from the edge"
    replaced = run(app, {"action": "put_rule_set", "name": "kitchen", "rules": ["At most 2 mugs"]})
    assert replaced["version"] == 2 and len(replaced["rules"]) == 1
    assert run(app, {"action": "get_rule_set", "name": "kitchen"}) == replaced
    names = [s["name"] for s in run(app, {"action": "list_rule_sets"})["rule_sets"]]
    assert names == ["default", "kitchen"]
    assert run(app, {"action": "delete_rule_set", "name": "kitchen"}) == {
        "name": "kitchen",
        "deleted": True,
    }
    assert run(app, {"action": "get_rule_set", "name": "kitchen"})["error"].startswith("not_found")


@pytest.mark.parametrize(
    ("rule", "status", "measured", "required"),
    [
        ("Keep mugs 50 px from the laptop", "pass", [60.0, "px"], [">=", 50.0, "px"]),
        ("Keep mugs 10% from the laptop", "fail", [6.0, "%"], [">=", 10.0, "%"]),
        ("Keep mugs 25 mm from the laptop", "pass", [30.0, "mm"], [">=", 25.0, "mm"]),
        ("Keep mugs at least 4 cm from the laptop", "fail", [3.0, "cm"], [">=", 4.0, "cm"]),
        ("Keep mugs 1 inch from the laptop", "pass", [1.18, "in"], [">=", 1.0, "in"]),
        ("The mug should be within 20 cm of the keyboard", "pass", [18.5, "cm"], ["<=", 20.0, "cm"]),
        ("Keep mugs 8 cm from the edge", "fail", [5.5, "cm"], [">=", 8.0, "cm"]),
        ("Mugs must stay in the top half", "pass", [150.0, "px"], ["inside", None, "px"]),
        ("At most 0 mugs", "fail", [1, "mugs"], ["<=", 0, "mugs"]),
        ("Keep mugs 10 cm apart", "pass", None, [">=", 10.0, "cm"]),
        ("The mug should be on a coaster", "unknown", None, [">=", 0.5, "probability"]),
    ],
)  # fmt: skip
def test_evaluate_every_rule_type(
    app: Worker, rule: str, status: str, measured: list | None, required: list
) -> None:
    output = run(
        app,
        {
            "action": "evaluate",
            "detections": DESK,
            "image_size": [1000, 800],
            "calibration": {"mm_per_px": 0.5},
            "rules": [rule],
        },
    )
    (result,) = output["rules"]
    assert result["status"] == status, result["message"]
    if measured is None:
        assert result["measured"] is None
    else:
        assert [result["measured"]["value"], result["measured"]["unit"]] == measured
    op, value, unit = required
    assert (result["required"]["op"], result["required"]["unit"]) == (op, unit)
    if value is not None:
        assert result["required"]["value"] == value
