"""Rule evaluation on hand-made scenes: status, measured and required values for every rule type."""

from __future__ import annotations

import pytest

from positioning.geometry import Box
from positioning.scene import Detection, Scene, build_scene
from rules.evaluate import RuleResult, evaluate
from rules.judge import judge, safety_score
from rules.model import rule_from_dict

# A 1000 x 800 image; no table found, so the surface is the whole image (no table edge in view);
# with a scale, 1 px = 0.5 mm. Edge rules are judged on a table in the middle of the picture.
LAPTOP = Detection("d1", "laptop", 63, 0.9, Box(100, 100, 400, 300))
KEYBOARD = Detection("d2", "keyboard", 66, 0.9, Box(450, 600, 850, 700))
MUG = Detection("d3", "cup", 41, 0.9, Box(460, 150, 540, 230))  # 60 px right of the laptop
MUG_2 = Detection("d4", "cup", 41, 0.9, Box(580, 150, 660, 230))  # 40 px right of MUG


TABLE = Detection("d9", "dining table", 60, 0.9, Box(100, 100, 900, 700))


def scene(*mugs: Detection, mm_per_px: float | None = 0.5, others=(LAPTOP, KEYBOARD)) -> Scene:
    return build_scene(1000, 800, [*others, *mugs], [(m, None) for m in mugs], mm_per_px=mm_per_px)


def on_table(*mugs: Detection, table: Detection = TABLE, mm_per_px: float | None = 0.5) -> Scene:
    return scene(*mugs, mm_per_px=mm_per_px, others=(table, LAPTOP, KEYBOARD))


def one(rule: dict, s: Scene, scores=None) -> RuleResult:
    (result,) = evaluate(rule_from_dict(rule), s, scores)
    return result


@pytest.mark.parametrize(
    ("distance", "status", "measured"),
    [
        ("50 px", "pass", (60, "px")),
        ("70 px", "fail", (60, "px")),
        ("25 mm", "pass", (30, "mm")),
        ("3 cm", "pass", (3, "cm")),
        ("3.5 cm", "fail", (3, "cm")),
        ("1 in", "pass", (pytest.approx(30 / 25.4, abs=0.01), "in")),
        ("2 in", "fail", (pytest.approx(30 / 25.4, abs=0.01), "in")),
        ("5%", "pass", (6, "%")),
        ("10%", "fail", (6, "%")),
    ],
)
def test_min_distance_in_every_unit(distance: str, status: str, measured: tuple) -> None:
    result = one({"type": "min_distance", "object": "laptop", "distance": distance}, scene(MUG))
    assert result.status == status
    assert (result.measured.value, result.measured.unit) == measured
    assert result.required.op == ">="
    assert result.mug_id == "m1"
    assert (result.adjustment is None) == (status == "pass")


def test_physical_units_without_a_scale_are_unknown_never_a_guess() -> None:
    result = one(
        {"type": "min_distance", "object": "laptop", "distance": "15 cm"},
        scene(MUG, mm_per_px=None),
    )
    assert result.status == "unknown"
    assert (result.measured.value, result.measured.unit) == (60, "px")
    assert "without a scale" in result.message
    assert result.adjustment is None
    px_rule = one(
        {"type": "min_distance", "object": "laptop", "distance": "50 px"},
        scene(MUG, mm_per_px=None),
    )
    assert px_rule.status == "pass"


def test_min_distance_passes_when_the_object_is_absent() -> None:
    result = one({"type": "min_distance", "object": "cell phone", "distance": "10 cm"}, scene(MUG))
    assert result.status == "pass"
    assert result.measured is None
    assert "no cell phone in view" in result.message


def test_min_distance_checks_every_object_of_the_class() -> None:
    near = Detection("d9", "laptop", 63, 0.9, Box(560, 150, 700, 230))  # 20 px right of MUG
    s = scene(MUG, others=(LAPTOP, near))
    result = one({"type": "min_distance", "object": "computer", "distance": "30 px"}, s)
    assert result.status == "fail"
    assert result.measured.value == 20


def test_max_distance() -> None:
    to_keyboard = {"type": "max_distance", "object": "keyboard", "distance": "20 cm"}
    result = one(to_keyboard, scene(MUG))  # 370 px = 185 mm
    assert (result.status, result.measured.value, result.measured.unit) == ("pass", 18.5, "cm")
    assert result.required.op == "<="
    tight = one({**to_keyboard, "distance": "15 cm"}, scene(MUG))
    assert tight.status == "fail"
    assert tight.adjustment is not None


def test_max_distance_fails_without_the_object_and_has_no_move() -> None:
    result = one({"type": "max_distance", "object": "phone", "distance": "30 cm"}, scene(MUG))
    assert result.status == "fail"
    assert result.adjustment is None
    assert "no cell phone in view" in result.message


def test_edge_margin() -> None:
    near_edge = Detection("d5", "cup", 41, 0.9, Box(120, 500, 200, 580))  # 20 px from the left
    rule = {"type": "edge_margin", "distance": "1 cm", "severity": "critical"}
    result = one(rule, on_table(near_edge))
    assert (result.status, result.measured.value, result.measured.unit) == ("pass", 1, "cm")
    result = one({**rule, "distance": "2 cm"}, on_table(near_edge))
    assert result.status == "fail"
    assert result.adjustment.dx == pytest.approx(20, abs=0.05)
    assert result.adjustment.dy == pytest.approx(0, abs=0.05)


def test_edge_margin_over_the_edge_is_negative() -> None:
    over = Detection("d5", "cup", 41, 0.9, Box(70, 500, 150, 580))
    result = one({"type": "edge_margin", "distance": "0 px"}, on_table(over))
    assert result.status == "fail"
    assert result.measured.value == -30
    assert "sticks" in result.message


def test_a_table_side_on_the_image_border_is_not_an_edge() -> None:
    """SPEC 10: the table runs on out of view there; the edge is measured to the sides in view."""
    cut_left = Detection("d9", "dining table", 60, 0.9, Box(0, 100, 900, 700))
    at_the_border = Detection("d5", "cup", 41, 0.9, Box(5, 300, 85, 380))
    rule = {"type": "edge_margin", "distance": "5 cm"}  # 100 px
    result = one(rule, on_table(at_the_border, table=cut_left))
    assert (result.status, result.measured.value) == ("pass", 10)  # cm: 200 px to the top edge
    near_top = Detection("d5", "cup", 41, 0.9, Box(5, 120, 85, 200))
    result = one(rule, on_table(near_top, table=cut_left))
    assert (result.status, result.measured.value) == ("fail", 1)  # cm: 20 px to the top edge
    assert result.adjustment is not None and result.adjustment.dx == 0  # never towards the cut


@pytest.mark.parametrize(
    "table",
    [None, Detection("d9", "dining table", 60, 0.9, Box(1, 0, 1000, 799))],
    ids=["no-table", "table-fills-the-picture"],
)
def test_with_no_table_edge_in_view_the_edge_rule_is_unknown(table: Detection | None) -> None:
    mug = Detection("d5", "cup", 41, 0.9, Box(20, 500, 100, 580))
    s = scene(mug) if table is None else on_table(mug, table=table)
    assert s.surface.visible_sides == frozenset()
    result = one({"type": "edge_margin", "distance": "1 cm"}, s)
    assert result.status == "unknown"
    assert "runs out of the picture on every side" in result.message


@pytest.mark.parametrize(
    ("zone", "mode", "status"),
    [
        ("left_half", "inside", "pass"),  # centre x = 500 of 1000: boundaries count as inside
        ("right_half", "inside", "pass"),
        ("top_half", "inside", "pass"),
        ("bottom_half", "inside", "fail"),
        ("center_third", "inside", "pass"),
        ("left_third", "inside", "fail"),
        ("center", "inside", "fail"),  # y = 190 is above the middle third (266..533)
        ("center", "outside", "pass"),
        ("top_half", "outside", "fail"),
    ],
)
def test_zone(zone: str, mode: str, status: str) -> None:
    result = one({"type": "zone", "zone": zone, "mode": mode}, scene(MUG))
    assert result.status == status
    assert result.required.op == mode
    assert (result.adjustment is None) == (status == "pass")


def test_zone_polygon_on_the_surface() -> None:
    rule = {"type": "zone", "zone": [[0.4, 0.1], [0.6, 0.1], [0.6, 0.4], [0.4, 0.4]]}
    assert one(rule, scene(MUG)).status == "pass"
    assert one({**rule, "mode": "outside"}, scene(MUG)).status == "fail"


def test_count() -> None:
    s = scene(MUG, MUG_2)
    result = one({"type": "count", "max": 1}, s)
    assert (result.status, result.mug_id, result.measured.value) == ("fail", None, 2)
    assert result.required.op == "<=" and result.required.value == 1
    both = one({"type": "count", "min": 1, "max": 3}, s)
    assert (both.status, both.required.op, both.required.value) == ("pass", "between", [1, 3])
    assert one({"type": "count", "min": 1}, scene()).status == "fail"


def test_spacing_gives_one_result_per_mug() -> None:
    results = evaluate(
        rule_from_dict({"type": "spacing", "distance": "3 cm"}), scene(MUG, MUG_2), None
    )
    assert [(r.mug_id, r.status, r.measured.value) for r in results] == [
        ("m1", "fail", 2),
        ("m2", "fail", 2),
    ]
    alone = evaluate(rule_from_dict({"type": "spacing", "distance": "3 cm"}), scene(MUG), None)
    assert alone[0].status == "pass"


def test_attribute_uses_the_given_clip_scores() -> None:
    rule = rule_from_dict({"type": "attribute", "prompt": "a mug on a coaster"})
    s = scene(MUG, MUG_2)
    results = evaluate(rule, s, {(rule.rule_id, "m1"): 0.8, (rule.rule_id, "m2"): 0.3})
    assert [(r.status, r.measured.value) for r in results] == [("pass", 0.8), ("fail", 0.3)]
    unknown = evaluate(rule, s, None)
    assert {r.status for r in unknown} == {"unknown"}


def test_disabled_rules_are_skipped_and_the_score_follows_the_spec() -> None:
    rules = [
        rule_from_dict(
            {
                "type": "min_distance",
                "object": "laptop",
                "distance": "70 px",
                "severity": "critical",
            }
        ),
        rule_from_dict({"type": "max_distance", "object": "keyboard", "distance": "20 cm"}),
        rule_from_dict({"type": "edge_margin", "distance": "1 px", "severity": "info"}),
        rule_from_dict({"type": "count", "max": 0, "enabled": False}),
        rule_from_dict({"type": "min_distance", "object": "laptop", "distance": "50 cm"}),
    ]
    verdict = judge(on_table(MUG, mm_per_px=None), rules)
    statuses = [r.status for r in verdict.results]
    assert statuses == ["fail", "unknown", "pass", "unknown"]
    # failed critical (3) out of judged critical (3) + info (1)
    assert verdict.safety_score == pytest.approx(1 - 3 / 4)
    assert safety_score(verdict.results) == verdict.safety_score
    assert verdict.compliant is False
    assert judge(scene(MUG), []).safety_score == 1.0


def test_feedback_says_what_to_do() -> None:
    rules = [rule_from_dict({"type": "min_distance", "object": "laptop", "distance": "10 cm"})]
    verdict = judge(scene(MUG), rules)
    assert verdict.summary == "The mug needs moving: m1 is too close to the laptop."
    (tip,) = verdict.recommendations
    assert tip == "Move mug m1 70 mm to the right, away from the laptop."
    (adjustment,) = verdict.adjustments
    assert adjustment.move.dx == pytest.approx(140, abs=0.05)
    compliant = judge(scene(MUG), [rule_from_dict({"type": "count", "max": 3})])
    assert compliant.summary == "The mug is placed safely."
    assert compliant.recommendations == []


def test_conflicting_rules_have_no_optimal_position() -> None:
    rules = [
        rule_from_dict({"type": "zone", "zone": "left_third"}),
        rule_from_dict({"type": "zone", "zone": "right_third"}),
    ]
    verdict = judge(scene(MUG), rules)
    (placement,) = verdict.optimal_positions
    assert placement.feasible is False and placement.move is None
    assert placement.conflict == tuple(rules)  # each alone has a spot; the two together none
    assert (
        "No spot on the table satisfies both the rule (into the left third) and the rule (into "
        "the right third) for mug m1; relax one of them or clear space."
    ) in verdict.recommendations
    # each rule still says how to fix it on its own
    assert len(verdict.adjustments) == 2


def test_a_mug_too_big_for_the_area_a_rule_allows_is_told_so() -> None:
    """SPEC 10: not "the rules conflict" when one rule alone leaves the mug no room."""
    rules = [
        rule_from_dict({"type": "edge_margin", "distance": "25 cm", "text": "Keep mugs 25 cm in"}),
        rule_from_dict({"type": "min_distance", "object": "laptop", "distance": "1 cm"}),
    ]  # the table is 800 x 600 px = 40 x 30 cm: 25 cm in from each edge leaves nothing
    verdict = judge(on_table(MUG), rules)
    (placement,) = verdict.optimal_positions
    assert placement.conflict == (rules[0],)
    assert (
        'Mug m1 does not fit anywhere on the table that "Keep mugs 25 cm in" allows: the allowed '
        "area is smaller than the mug; relax that rule."
    ) in verdict.recommendations
