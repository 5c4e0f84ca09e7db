"""Rule kinds are modules behind one Protocol: nothing outside them asks a rule its type, a new
kind plugs in by its module alone, and each result carries what the annotator marks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from positioning.geometry import Box, closest_points, nearest_edge
from positioning.regions import Constraint, Rect
from positioning.scene import Detection, MugPlacement, Scene, build_scene
from rules.judge import judge
from rules.kinds import KINDS, Judging, Placement, RuleKind, kind_of
from rules.model import RuleBase, rule_from_dict
from rules.outcome import Measured, Required, RuleResult
from worker.annotate import draw_annotations, place_labels
from worker.report import verdict_fields

ROOT = Path(__file__).resolve().parents[1]
# isinstance(rule, ZoneRule), rule.type == "zone" / in (...), KINDS[rule.type], match ... case
# ZoneRule(...), type(rule) is ...
TYPE_BRANCH = re.compile(
    r"isinstance\([^)]*Rule\b|\.type\s*(==|!=|in\b)|\[\s*\w+\.type\s*\]|case\s+\w*Rule\("
    r"|type\(\s*\w*rule\w*\s*\)\s*(is|==)"
)


def test_only_the_kind_modules_branch_on_a_rule_type() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] not in {"tests", ".git"}
        and path.relative_to(ROOT).parts[:2] != ("rules", "kinds")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if TYPE_BRANCH.search(line)
    ]
    assert offenders == []


def test_every_rule_type_has_a_kind() -> None:
    for data in (
        {"type": "min_distance", "object": "laptop", "distance": "5 cm"},
        {"type": "max_distance", "object": "laptop", "distance": "5 cm"},
        {"type": "edge_margin", "distance": "5 cm"},
        {"type": "zone", "zone": "left_half"},
        {"type": "count", "max": 1},
        {"type": "spacing", "distance": "5 cm"},
        {"type": "attribute", "prompt": "a mug with a lid"},
    ):
        assert isinstance(kind_of(rule_from_dict(data)), RuleKind)


# --------------------------------------------------------------- a new kind, added as the README says

SURFACE = 1000, 800
MUG_BOX = Box(20, 20, 100, 100)  # in the top-left corner


class CornerRule(RuleBase):
    """Demo kind: the mug's centre stays out of the corners (a quarter of each side)."""

    type: Literal["corner"] = "corner"


class Corner(Placement):
    """The demo kind's module: judged per mug, a placement constraint, its own wording."""

    def judge_mug(
        self, rule: CornerRule, mug: MugPlacement, scene: Scene, judging: Judging
    ) -> RuleResult:
        in_corner = mug.position_label.endswith(("left", "right"))
        required = Required(op="outside", value=[], unit="px")
        if not in_corner:
            return RuleResult(rule, mug.id, "pass", None, required, f"{mug.id} is off the corners.")
        adjustment = self.adjustment(rule, mug, scene, judging.budget)
        return RuleResult(
            rule,
            mug.id,
            "fail",
            Measured(0, "px"),
            required,
            f"{mug.id} stands in the {mug.position_label.replace('_', '-')} corner.",
            adjustment,
        )

    def constraints(self, rule: CornerRule, mug: MugPlacement, scene: Scene) -> list[Constraint]:
        s = scene.surface.box
        w, h = s.width / 4, s.height / 4
        corners = tuple(
            Rect(x, y, x + w, y + h) for x in (s.x1, s.x2 - w) for y in (s.y1, s.y2 - h)
        )
        return [Constraint(corners, inside=False)]

    def problem(self, result: RuleResult) -> str:
        return "in a corner"

    def move_reason(self, rule: CornerRule) -> str:
        return "out of the corner"


def corner_scene() -> Scene:
    mug = Detection("d1", "cup", 41, 0.9, MUG_BOX)
    return build_scene(*SURFACE, [mug], [(mug, None)], mm_per_px=1.0)


def test_a_new_kind_needs_only_its_module_and_its_registry_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(KINDS, "corner", Corner())
    assert isinstance(KINDS["corner"], Placement)
    verdict = judge(corner_scene(), [CornerRule()])
    (result,) = verdict.results
    assert result.status == "fail"
    assert result.message == "m1 stands in the top-left corner."
    assert verdict.summary == "The mug needs moving: m1 is in a corner."
    (placement,) = verdict.optimal_positions
    assert placement.center is not None
    x, y = placement.center
    assert x >= 250 or y >= 200  # out of the top-left quarter
    (adjustment,) = verdict.adjustments
    assert adjustment.reason == "out of the corner"
    assert verdict.recommendations[0].startswith("Move mug m1 ")
    # the result fields and the annotated image come from the same judgement, unchanged code
    fields = verdict_fields(corner_scene(), verdict)
    (out,) = fields["rules"]
    assert (out.type, out.status, out.adjustment is not None) == ("corner", "fail", True)
    assert fields["positioning"].adjustments_needed[0].reason == "out of the corner"
    picture = draw_annotations(Image.new("RGB", SURFACE, (200, 200, 200)), corner_scene(), verdict)
    assert picture.size == SURFACE


# --------------------------------------------------------------- what a result hands the annotator

LAPTOP = Detection("d1", "laptop", 63, 0.9, Box(100, 100, 400, 300))
NEAR_MUG = Detection("d2", "cup", 41, 0.9, Box(420, 150, 500, 230))  # 20 px right of the laptop
OTHER_MUG = Detection("d3", "cup", 41, 0.9, Box(530, 150, 610, 230))  # 30 px right of NEAR_MUG


TABLE = Detection("d9", "dining table", 60, 0.9, Box(50, 50, 950, 750))  # its edges in view


def desk() -> Scene:
    return build_scene(
        1000, 800, [TABLE, LAPTOP, NEAR_MUG, OTHER_MUG], [(NEAR_MUG, None), (OTHER_MUG, None)],
        mm_per_px=1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "marks_of_m1"),
    [
        (
            {"type": "min_distance", "object": "laptop", "distance": "5 cm"},
            (closest_points(NEAR_MUG.box, LAPTOP.box),),
        ),
        (
            {"type": "spacing", "distance": "5 cm"},
            (closest_points(NEAR_MUG.box, OTHER_MUG.box),),
        ),
        ({"type": "edge_margin", "distance": "50 cm"}, "edge"),
        ({"type": "max_distance", "object": "laptop", "distance": "1 mm"}, ()),
        ({"type": "zone", "zone": "right_third"}, ()),
    ],
)
def test_a_failed_result_carries_the_lines_the_annotator_draws(
    rule: dict, marks_of_m1: object
) -> None:
    scene = desk()
    results = judge(scene, [rule_from_dict(rule)]).results
    (m1,) = [r for r in results if r.mug_id == "m1"]
    assert m1.status == "fail"
    if marks_of_m1 == "edge":
        nearest = nearest_edge(NEAR_MUG.box, scene.surface.edges)
        assert nearest is not None
        _, on_mug, on_edge = nearest
        marks_of_m1 = ((on_mug, on_edge),)
    assert m1.marks() == marks_of_m1


def test_a_passed_result_marks_nothing() -> None:
    results = judge(
        desk(), [rule_from_dict({"type": "min_distance", "object": "laptop", "distance": "1 mm"})]
    ).results
    assert all(r.status == "pass" and r.marks() == () for r in results)


# --------------------------------------------------------------- labels on the annotated image


@given(
    labels=st.lists(
        st.tuples(
            st.integers(10, 200), st.integers(8, 30), st.integers(0, 640), st.integers(0, 480)
        ),
        max_size=60,
    ),
    legend=st.booleans(),
)
def test_labels_never_cover_one_another_and_stay_in_the_picture(
    labels: list[tuple[int, int, int, int]], legend: bool
) -> None:
    taken = [(0.0, 400.0, 120.0, 480.0)] if legend else []
    sizes = [(float(w), float(h)) for w, h, _, _ in labels]
    anchors = [(float(x), float(y)) for _, _, x, y in labels]
    spots = place_labels(sizes, anchors, (640, 480), taken)
    placed = [spot for spot in spots if spot is not None]
    for i, a in enumerate(placed):
        assert a[0] >= 0 and a[1] >= 0 and a[2] <= 640 and a[3] <= 480
        for b in [*placed[i + 1 :], *taken]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    for spot, (w, h) in zip(spots, sizes, strict=True):
        assert spot is None or (spot[2] - spot[0], spot[3] - spot[1]) == (w, h)
    if labels and labels[0][0] <= 200 and not legend:
        assert (
            spots[0] is not None
        )  # the most important label always finds room in an empty picture
