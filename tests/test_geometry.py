"""Geometry on hand-made boxes, plus properties that must hold for any boxes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from positioning.geometry import (
    RECT_SIDES,
    Box,
    Edge,
    box_corners,
    closest_points,
    direction_phrase,
    edge_distance,
    gap,
    iou,
    nearest_edge,
    outline_edges,
    position_label,
    sides_on_border,
)

SURFACE_BOX = Box(0, 0, 1000, 500)


def edges_of(box: Box, sides: set[str] | tuple[str, ...] = RECT_SIDES) -> list[Edge]:
    """The box as a surface outline, with only ``sides`` in view."""
    return [edge for edge in outline_edges(box_corners(box), RECT_SIDES) if edge.name in sides]


SURFACE = edges_of(SURFACE_BOX)


@pytest.mark.parametrize(
    ("surface", "cut"),
    [
        (Box(40, 30, 960, 470), set()),  # the whole table in view
        (Box(0, 30, 960, 470), {"left"}),  # runs out of the picture on the left
        (Box(29, 30, 971, 470), {"left", "right"}),  # within 3 % of the width counts
        (Box(31, 14, 969, 470), {"top"}),  # ... and within 3 % of the height
        (Box(40, 0, 1000, 500), {"top", "right", "bottom"}),
        (Box(0, 0, 1000, 500), {"left", "right", "top", "bottom"}),  # no edge in view
    ],
)
def test_the_sides_on_the_image_border_are_not_edges(surface: Box, cut: set[str]) -> None:
    on_border = sides_on_border(box_corners(surface), 1000, 500)
    assert {name for name, side in zip(RECT_SIDES, on_border, strict=True) if side} == cut


def test_the_edge_distance_is_to_the_visible_sides_only() -> None:
    mug = Box(10, 200, 90, 280)  # 10 px from the left side, 200 from the top
    assert edge_distance(mug, SURFACE) == 10
    assert edge_distance(mug, edges_of(SURFACE_BOX, {"top", "right", "bottom"})) == 200
    assert edge_distance(mug, []) is None
    assert nearest_edge(mug, edges_of(SURFACE_BOX, {"top", "right"})) == ("top", (50, 200), (50, 0))
    assert nearest_edge(mug, []) is None


def test_gap_side_by_side_is_the_horizontal_distance() -> None:
    assert gap(Box(0, 0, 10, 10), Box(25, 2, 40, 8)) == 15


def test_gap_diagonal_is_the_corner_to_corner_distance() -> None:
    assert gap(Box(0, 0, 10, 10), Box(13, 14, 20, 20)) == pytest.approx(5.0)


def test_gap_is_zero_for_touching_and_overlapping_boxes() -> None:
    assert gap(Box(0, 0, 10, 10), Box(10, 0, 20, 10)) == 0
    assert gap(Box(0, 0, 10, 10), Box(5, 5, 20, 20)) == 0
    assert gap(Box(0, 0, 100, 100), Box(40, 40, 60, 60)) == 0


def test_edge_distance_is_the_smallest_margin() -> None:
    assert edge_distance(Box(100, 50, 200, 150), SURFACE) == 50
    assert edge_distance(Box(900, 200, 990, 300), SURFACE) == 10


def test_edge_distance_is_negative_when_the_box_sticks_out() -> None:
    assert edge_distance(Box(-30, 200, 70, 300), SURFACE) == -30
    assert edge_distance(Box(400, 450, 500, 540), SURFACE) == -40


def test_nearest_edge_names_the_side_and_its_points() -> None:
    side, on_box, on_edge = nearest_edge(Box(900, 200, 990, 300), SURFACE)
    assert side == "right"
    assert on_box == (990, 250)
    assert on_edge == (1000, 250)


@pytest.mark.parametrize(
    ("point", "label"),
    [
        ((500, 250), "center"),
        ((100, 250), "left_edge"),
        ((900, 250), "right_edge"),
        ((500, 50), "top_edge"),
        ((500, 450), "bottom_edge"),
        ((50, 50), "top_left"),
        ((950, 50), "top_right"),
        ((50, 450), "bottom_left"),
        ((950, 450), "bottom_right"),
        ((200, 100), "center"),  # exactly on the 20% line counts as inside the centre
    ],
)
def test_position_labels(point: tuple[float, float], label: str) -> None:
    assert position_label(point, SURFACE_BOX) == label


def test_position_label_is_relative_to_the_surface_not_the_image() -> None:
    table = Box(400, 100, 600, 300)
    assert position_label((410, 200), table) == "left_edge"
    assert position_label((500, 200), table) == "center"


@pytest.mark.parametrize(
    ("dx", "dy", "phrase"),
    [
        (10, 0, "right"),
        (-10, 1, "left"),
        (0, -10, "up"),
        (1, 10, "down"),
        (-10, -10, "up and left"),
        (10, 8, "down and right"),
        (0, 0, "none"),
    ],
)
def test_direction_phrase(dx: float, dy: float, phrase: str) -> None:
    assert direction_phrase(dx, dy) == phrase


def test_box_rejects_corners_out_of_order() -> None:
    with pytest.raises(ValueError, match="out of order"):
        Box(10, 0, 5, 5)


def test_clip_keeps_boxes_inside_the_image() -> None:
    assert Box(-5, -5, 50, 700).clip(640, 480).as_list() == [0, 0, 50, 480]


def test_iou_of_hand_made_boxes() -> None:
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(10, 0, 20, 10)) == 0.0  # touching shares no area
    assert iou(Box(3, 3, 3, 3), Box(3, 3, 3, 3)) == 0.0  # empty boxes


coordinate = st.floats(min_value=-2000, max_value=2000, allow_nan=False)
size = st.floats(min_value=0, max_value=800, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    x, y, w, h = draw(coordinate), draw(coordinate), draw(size), draw(size)
    return Box(x, y, x + w, y + h)


@given(boxes(), boxes())
def test_gap_is_symmetric_and_non_negative(a: Box, b: Box) -> None:
    assert gap(a, b) == gap(b, a)
    assert gap(a, b) >= 0


@given(boxes(), boxes())
def test_gap_is_the_distance_between_the_closest_points(a: Box, b: Box) -> None:
    (ax, ay), (bx, by) = closest_points(a, b)
    assert a.x1 <= ax <= a.x2 and a.y1 <= ay <= a.y2
    assert b.x1 <= bx <= b.x2 and b.y1 <= by <= b.y2
    assert math.hypot(ax - bx, ay - by) == pytest.approx(gap(a, b), abs=1e-6)


@given(boxes(), boxes(), coordinate, coordinate)
def test_gap_does_not_change_when_both_boxes_move_together(
    a: Box, b: Box, dx: float, dy: float
) -> None:
    moved = gap(a.translate(dx, dy), b.translate(dx, dy))
    assert moved == pytest.approx(gap(a, b), abs=1e-6)


@given(boxes(), boxes())
def test_gap_is_zero_exactly_when_the_boxes_intersect(a: Box, b: Box) -> None:
    intersect = a.x1 <= b.x2 and b.x1 <= a.x2 and a.y1 <= b.y2 and b.y1 <= a.y2
    assert (gap(a, b) == 0) == intersect


@given(boxes())
def test_edge_distance_is_positive_exactly_when_strictly_inside(box: Box) -> None:
    inside = (
        box.x1 > SURFACE_BOX.x1
        and box.x2 < SURFACE_BOX.x2
        and box.y1 > SURFACE_BOX.y1
        and box.y2 < SURFACE_BOX.y2
    )
    assert (edge_distance(box, SURFACE) > 0) == inside


@given(boxes(), boxes())
def test_union_holds_both_and_overlap_agrees_with_gap(a: Box, b: Box) -> None:
    union = a.union(b)
    for box in (a, b):
        assert union.x1 <= box.x1 and union.y1 <= box.y1
        assert union.x2 >= box.x2 and union.y2 >= box.y2
    assert a.overlaps(b) == b.overlaps(a)
    if a.overlaps(b):
        assert gap(a, b) == 0.0
    if gap(a, b) > 0:
        assert not a.overlaps(b)


@given(boxes(), boxes())
def test_iou_is_symmetric_between_0_and_1_and_0_without_overlap(a: Box, b: Box) -> None:
    assert iou(a, b) == iou(b, a)
    assert 0.0 <= iou(a, b) <= 1.0 + 1e-9
    if not a.overlaps(b):
        assert iou(a, b) == 0.0
