"""The annotated image: boxes and class labels, mug ids, edge and gap lines, failed rules in red,
each mug's suggested move as a short arrow with its distance, and a legend. Labels never cover
one another (``place_labels``): in a crowded picture the least important ones are left out."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from positioning.geometry import Box, Point, closest_points, nearest_edge
from positioning.scene import Scene
from rules.judge import Judgement

SURFACE_COLOUR = (255, 215, 0)
OBJECT_COLOUR = (0, 160, 255)
MUG_COLOUR = (40, 220, 90)
EDGE_COLOUR = (255, 140, 0)
GAP_COLOUR = (230, 60, 230)
FAIL_COLOUR = (255, 40, 40)


Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Label:
    """A text to write near ``anchor``; labels placed first win the space (``place_labels``)."""

    text: str
    anchor: Point
    colour: tuple[int, int, int]


def place_labels(
    sizes: Sequence[tuple[float, float]],
    anchors: Sequence[Point],
    image_size: tuple[int, int],
    taken: Sequence[Rect] = (),
) -> list[Rect | None]:
    """Where each label goes: the first of a few spots around its anchor (above, below, right,
    left, on it) that lies in the image and overlaps no label placed before it, or None (left out:
    a crowded picture keeps what it can show legibly). Pure, in order, so tests can check it."""
    width, height = image_size
    placed: list[Rect] = list(taken)
    spots: list[Rect | None] = []
    for (w, h), (x, y) in zip(sizes, anchors, strict=True):
        candidates = [
            (x, y - h - 4), (x, y + 4), (x + 6, y - h / 2), (x - w - 6, y - h / 2),
            (x - w / 2, y - h / 2), (x - w, y - h - 4), (x - w, y + 4),
        ]  # fmt: skip
        spot = None
        for left, top in candidates:
            rect = (left, top, left + w, top + h)
            inside = left >= 0 and top >= 0 and rect[2] <= width and rect[3] <= height
            if inside and not any(_overlap(rect, other) for other in placed):
                spot = rect
                break
        spots.append(spot)
        if spot is not None:
            placed.append(spot)
    return spots


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _write(
    draw: ImageDraw.ImageDraw,
    labels: Sequence[Label],
    font: Font,
    taken: Sequence[Rect],
    size: tuple[int, int],
) -> None:
    """Write the labels where ``place_labels`` puts them (those with no room are left out)."""
    pad = 2
    sizes = []
    for label in labels:
        left, top, right, bottom = draw.textbbox((0, 0), label.text, font=font)
        sizes.append((right - left + 2 * pad, bottom - top + 2 * pad))
    spots = place_labels(sizes, [label.anchor for label in labels], size, taken)
    for label, spot in zip(labels, spots, strict=True):
        if spot is None:
            continue
        draw.rectangle(spot, fill=(0, 0, 0))
        left, top, _, _ = draw.textbbox((0, 0), label.text, font=font)
        draw.text(
            (spot[0] + pad - left, spot[1] + pad - top), label.text, fill=label.colour, font=font
        )


def _distance_text(px: float, mm: float | None) -> str:
    return f"{px:.0f} px" if mm is None else f"{mm:.0f} mm"


def draw_annotations(image: Image.Image, scene: Scene, judgement: Judgement) -> Image.Image:
    """A copy of the image with everything the analysis measured drawn on it: lines first, then
    the labels, most important first (mugs and their moves, failed rules, distances, objects),
    none over another, and a legend of the colours in a corner."""
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(canvas.size) / 300))
    font = _font(max(12, round(canvas.width / 60)))

    outline = scene.to_image(scene.surface.corners)
    draw.line([*outline, outline[0]], fill=SURFACE_COLOUR, width=line)
    mug_detections = {m.detection.id for m in scene.mugs}
    first: list[Label] = []  # mug ids and moves
    then: list[Label] = []  # distances
    last: list[Label] = []  # other objects' names
    for detection in scene.detections:
        if detection.id in mug_detections:
            continue
        box = scene.image_box(detection)
        draw.rectangle(box.as_list(), outline=OBJECT_COLOUR, width=line)
        last.append(
            Label(
                f"{detection.class_name} {detection.confidence:.2f}",
                (box.x1, box.y1),
                OBJECT_COLOUR,
            )
        )
    for mug in scene.mugs:
        box = scene.image_box(mug.detection)
        draw.rectangle(box.as_list(), outline=MUG_COLOUR, width=line * 2)
        first.append(Label(f"{mug.id} mug", (box.x1, box.y1), MUG_COLOUR))
        nearest = nearest_edge(mug.box, scene.surface.edges)
        if nearest is not None and mug.edge_distance_px is not None:
            on_mug, on_edge = scene.to_image(nearest[1:])
            draw.line([on_mug, on_edge], fill=EDGE_COLOUR, width=line)
            edge_mm = scene.scale.to_mm(mug.edge_distance_px)
            text = f"{mug.id} edge {_distance_text(mug.edge_distance_px, edge_mm)}"
            then.append(Label(text, on_edge, EDGE_COLOUR))
        if mug.nearest:
            neighbour = mug.nearest[0]
            start, end = scene.to_image(closest_points(mug.box, neighbour.detection.box))
            draw.line([start, end], fill=GAP_COLOUR, width=line)
            middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
            gap_mm = scene.scale.to_mm(neighbour.gap_px)
            then.append(
                Label(f"gap {_distance_text(neighbour.gap_px, gap_mm)}", middle, GAP_COLOUR)
            )
    first.extend(_draw_verdict(draw, scene, judgement, line))
    legend = _legend(draw, font, canvas.size)
    _write(draw, [*first, *then, *last], font, [legend], canvas.size)
    return canvas


def _legend(draw: ImageDraw.ImageDraw, font: Font, size: tuple[int, int]) -> Rect:
    """The colours' meanings in the bottom-left corner; the space it takes."""
    entries = [
        ("table", SURFACE_COLOUR), ("object", OBJECT_COLOUR), ("mug", MUG_COLOUR),
        ("edge", EDGE_COLOUR), ("gap", GAP_COLOUR), ("failed / move", FAIL_COLOUR),
    ]  # fmt: skip
    text_height = draw.textbbox((0, 0), "Ag", font=font)[3]
    row = text_height + 4
    width = max(draw.textbbox((0, 0), text, font=font)[2] for text, _ in entries) + row + 12
    top = size[1] - row * len(entries) - 8
    rect = (0.0, float(top), float(width), float(size[1]))
    draw.rectangle(rect, fill=(0, 0, 0))
    for index, (text, colour) in enumerate(entries):
        y = top + 4 + index * row
        draw.rectangle((6, y + 2, 6 + text_height - 4, y + text_height - 2), fill=colour)
        draw.text((6 + row, y), text, fill=colour, font=font)
    return rect


def _draw_verdict(
    draw: ImageDraw.ImageDraw, scene: Scene, judgement: Judgement, line: int
) -> list[Label]:
    """What each failed rule marks (a gap that is too small, the edge), in red, and a short arrow
    from each mug towards where it should go; the labels of the moves."""
    mugs = {mug.id: mug for mug in scene.mugs}
    for result in judgement.results:
        if result.failed:
            for segment in result.marks():
                draw.line(scene.to_image(segment), fill=FAIL_COLOUR, width=line * 2)
    labels = []
    for placement in judgement.optimal_positions:
        mug = mugs[placement.mug_id]
        if placement.center is None or placement.move is None or placement.move.distance < 1:
            continue
        start, end = scene.to_image([mug.center, placement.center])
        head = _short(start, end, scene.image_box(mug.detection))
        _arrow(draw, start, head, line * 2)
        mm = scene.scale.to_mm(placement.move.distance)
        length = f"{placement.move.distance:.0f} px" if mm is None else f"{mm:.0f} mm"
        labels.append(Label(f"move {mug.id} {length}", head, FAIL_COLOUR))
    return labels


def _short(start: Point, end: Point, box: Box) -> Point:
    """The arrow's head: the way to go, at most about the mug's own size long (its label says
    how far), so arrows do not cross the picture."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = math.hypot(dx, dy)
    longest = 1.5 * max(box.width, box.height, 20.0)
    if length <= longest:
        return end
    return (start[0] + dx * longest / length, start[1] + dy * longest / length)


def _arrow(draw: ImageDraw.ImageDraw, start: Point, end: Point, width: int) -> None:
    draw.line([start, end], fill=FAIL_COLOUR, width=width)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = max(8.0, width * 4.0)
    left = (end[0] - head * math.cos(angle - 0.4), end[1] - head * math.sin(angle - 0.4))
    right = (end[0] - head * math.cos(angle + 0.4), end[1] - head * math.sin(angle + 0.4))
    draw.polygon([end, left, right], fill=FAIL_COLOUR)


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
