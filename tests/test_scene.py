"""The measured scene on hand-made detections: surface, scale, mug numbering and nearest gaps."""

from __future__ import annotations

import pytest

from positioning.geometry import Box
from positioning.scene import Detection, build_scene, resolve_scale, resolve_surface

REFERENCES = {"laptop": 310.0, "keyboard": 440.0, "cup": 120.0}


def det(id_: str, cls: str, box: tuple[float, float, float, float], conf: float = 0.9) -> Detection:
    return Detection(id=id_, class_name=cls, class_id=0, confidence=conf, box=Box(*box))


LAPTOP = det("d1", "laptop", (100, 100, 410, 300))
KEYBOARD = det("d2", "keyboard", (500, 400, 940, 500))
TABLE = det("d3", "dining table", (50, 50, 950, 600))
MUG_RIGHT = det("d4", "cup", (700, 200, 780, 280))
MUG_LEFT = det("d5", "cup", (440, 150, 500, 210))


def test_scale_from_input_is_exact() -> None:
    scale = resolve_scale([LAPTOP], mm_per_px=0.5, reference=None, default_references=REFERENCES)
    assert (scale.mm_per_px, scale.source, scale.approximate) == (0.5, "input", False)


def test_scale_from_a_named_reference_uses_its_longer_side() -> None:
    scale = resolve_scale(
        [LAPTOP, KEYBOARD], mm_per_px=None, reference=("keyboard", 440), default_references={}
    )
    assert scale.mm_per_px == pytest.approx(1.0)
    assert scale.source == "reference:keyboard"
    assert scale.approximate


def test_scale_from_the_first_default_reference_found() -> None:
    scale = resolve_scale(
        [KEYBOARD, LAPTOP], mm_per_px=None, reference=None, default_references=REFERENCES
    )
    assert scale.source == "reference:laptop"
    assert scale.mm_per_px == pytest.approx(310 / 310)


def test_named_reference_absent_gives_no_scale_rather_than_another_object() -> None:
    scale = resolve_scale(
        [LAPTOP], mm_per_px=None, reference=("keyboard", 440), default_references=REFERENCES
    )
    assert scale.mm_per_px is None
    assert scale.source == "none"


def test_no_reference_object_gives_no_scale() -> None:
    scale = resolve_scale([MUG_RIGHT], mm_per_px=None, reference=None, default_references={})
    assert scale.mm_per_px is None and scale.to_mm(10) is None


@pytest.mark.parametrize(
    ("box", "why"),
    [
        ((100, 100, 160, 300), "a laptop 60 x 200 px is a sliver of one, not a laptop"),
        ((500, 400, 620, 500), "a keyboard 120 x 100 px is not a keyboard's shape"),
        ((100, 100, 109, 106), "a laptop 9 px long is a speck in a 1000 px picture"),
    ],
)
def test_an_implausible_reference_box_gives_no_scale(box: tuple, why: str) -> None:
    odd = det("d8", "laptop" if "laptop" in why else "keyboard", box)
    scale = resolve_scale(
        [odd], mm_per_px=None, reference=None, default_references=REFERENCES, image_long_side=1000
    )
    assert scale.source == "none", why


def test_the_scale_skips_an_implausible_box_for_a_plausible_one() -> None:
    sliver = det("d8", "laptop", (100, 100, 160, 300), conf=0.99)
    scale = resolve_scale(
        [sliver, LAPTOP, KEYBOARD], mm_per_px=None, reference=None,
        default_references=REFERENCES, image_long_side=1000,
    )  # fmt: skip
    assert scale.source == "reference:laptop"
    assert scale.mm_per_px == pytest.approx(310 / 310)  # LAPTOP's box, not the sliver's


def test_a_mug_candidate_the_mug_check_rejected_never_gives_the_scale() -> None:
    phantom = det("d8", "cup", (300, 300, 333, 333))  # 120 mm over 33 px: 3.6 mm/px
    scale = resolve_scale(
        [phantom], mm_per_px=None, reference=None, default_references={"cup": 120.0},
        image_long_side=1000, rejected={"d8"},
    )  # fmt: skip
    assert scale.source == "none"
    kept = resolve_scale(
        [phantom], mm_per_px=None, reference=None, default_references={"cup": 120.0},
        image_long_side=1000,
    )  # fmt: skip
    assert kept.mm_per_px == pytest.approx(120 / 33)


def test_the_surface_is_the_table_that_holds_the_mugs() -> None:
    big = det("d8", "dining table", (0, 0, 600, 500))  # larger, but empty
    small = det("d9", "dining table", (650, 100, 990, 400))
    mug = det("d4", "cup", (700, 200, 780, 280))
    assert resolve_surface([big, small], 1000, 800, None, [mug]).box == small.box
    assert resolve_surface([big, small], 1000, 800, None).box == big.box  # no mugs: the largest
    scene = build_scene(1000, 800, [big, small, mug], [(mug, None)])
    assert scene.surface.box == small.box


def test_surface_from_input_polygon() -> None:
    surface = resolve_surface([TABLE], 1000, 800, [(0.1, 0.25), (0.9, 0.25), (0.5, 0.75)])
    assert surface.source == "input"
    assert surface.box.as_list() == pytest.approx([100, 200, 900, 600])


def test_surface_from_the_largest_detected_table() -> None:
    small = det("d9", "dining table", (0, 650, 100, 750))  # apart from the big one
    surface = resolve_surface([small, TABLE], 1000, 800, None)
    assert surface.source == "detected:dining table"
    assert surface.box == TABLE.box
    assert surface.polygon_norm[0] == pytest.approx((0.05, 0.0625))


def test_a_table_found_in_overlapping_pieces_is_one_surface() -> None:
    left = det("d4", "dining table", (0, 40, 620, 660))
    right = det("d5", "dining table", (320, 40, 946, 660))
    corner = det("d6", "dining table", (0, 600, 100, 720))  # overlaps the left piece only
    apart = det("d7", "dining table", (400, 740, 600, 800))  # another table
    surface = resolve_surface([apart, corner, left, right], 1000, 800, None)
    assert surface.box.as_list() == [0, 40, 946, 720]
    assert surface.source == "detected:dining table"


def test_surface_falls_back_to_the_whole_image() -> None:
    surface = resolve_surface([LAPTOP], 1000, 800, None)
    assert surface.source == "image"
    assert surface.box.as_list() == [0, 0, 1000, 800]


def test_mugs_are_numbered_left_to_right_and_measured() -> None:
    detections = [LAPTOP, KEYBOARD, TABLE, MUG_RIGHT, MUG_LEFT]
    scene = build_scene(
        1000,
        800,
        detections,
        [(MUG_RIGHT, 0.9), (MUG_LEFT, None)],
        mm_per_px=2.0,
    )
    assert [m.id for m in scene.mugs] == ["m1", "m2"]
    left, right = scene.mugs
    assert left.detection is MUG_LEFT and right.detection is MUG_RIGHT
    assert left.mug_score is None and right.mug_score == 0.9
    assert left.center == (470, 180)
    assert left.edge_distance_px == 100  # top: 150 - 50 on the detected table
    assert left.position_label == "center"
    # nearest: one per class, closest first, the table itself never a neighbour
    assert [(n.detection.class_name, n.gap_px) for n in left.nearest] == [
        ("laptop", 30),
        ("keyboard", pytest.approx(190)),
        ("cup", pytest.approx(200)),
    ]
    assert all(n.detection.class_name != "dining table" for m in scene.mugs for n in m.nearest)
    assert scene.scale.to_mm(left.nearest[0].gap_px) == 60


def test_other_mugs_are_neighbours_too() -> None:
    scene = build_scene(1000, 800, [MUG_RIGHT, MUG_LEFT], [(MUG_RIGHT, None), (MUG_LEFT, None)])
    assert scene.mugs[0].nearest[0].detection is MUG_RIGHT
    assert scene.mugs[0].nearest[0].gap_px == pytest.approx(200)
