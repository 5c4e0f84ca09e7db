"""The annotated image: boxes and class labels, mug ids, edge and gap lines, failed rules in red
and each mug's suggested move as an arrow to its optimal position."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

from positioning.geometry import Point, closest_points, nearest_edge
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


def _label(
    draw: ImageDraw.ImageDraw, at: Point, text: str, colour: tuple[int, int, int], font: Font
) -> None:
    left, top, right, bottom = draw.textbbox(at, text, font=font)
    draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
    draw.text(at, text, fill=colour, font=font)


def _distance_text(px: float, mm: float | None) -> str:
    return f"{px:.0f} px" if mm is None else f"{mm:.0f} mm"


def draw_annotations(image: Image.Image, scene: Scene, judgement: Judgement) -> Image.Image:
    """A copy of the image with everything the analysis measured drawn on it."""
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(canvas.size) / 300))
    font = _font(max(12, round(canvas.width / 60)))
    text_height = draw.textbbox((0, 0), "Ag", font=font)[3]

    surface = scene.surface.box
    draw.rectangle(surface.as_list(), outline=SURFACE_COLOUR, width=line)
    mug_detections = {m.detection.id for m in scene.mugs}
    for detection in scene.detections:
        if detection.id in mug_detections:
            continue
        draw.rectangle(detection.box.as_list(), outline=OBJECT_COLOUR, width=line)
        _label(
            draw,
            (detection.box.x1, max(0.0, detection.box.y1 - text_height - 4)),
            f"{detection.class_name} {detection.confidence:.2f}",
            OBJECT_COLOUR,
            font,
        )

    for mug in scene.mugs:
        box = mug.box
        draw.rectangle(box.as_list(), outline=MUG_COLOUR, width=line * 2)
        nearest = nearest_edge(box, surface, scene.surface.visible_sides)
        if nearest is not None and mug.edge_distance_px is not None:
            _, on_mug, on_edge = nearest
            draw.line([on_mug, on_edge], fill=EDGE_COLOUR, width=line)
            edge_mm = scene.scale.to_mm(mug.edge_distance_px)
            _label(
                draw,
                on_edge,
                f"edge {_distance_text(mug.edge_distance_px, edge_mm)}",
                EDGE_COLOUR,
                font,
            )
        if mug.nearest:
            neighbour = mug.nearest[0]
            start, end = closest_points(box, neighbour.detection.box)
            draw.line([start, end], fill=GAP_COLOUR, width=line)
            middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
            _label(
                draw,
                middle,
                f"gap {_distance_text(neighbour.gap_px, scene.scale.to_mm(neighbour.gap_px))}",
                GAP_COLOUR,
                font,
            )
        _label(draw, (box.x1 + line, box.y1 + line), f"{mug.id} mug", MUG_COLOUR, font)
    _draw_verdict(draw, scene, judgement, line, font)
    return canvas


def _draw_verdict(
    draw: ImageDraw.ImageDraw, scene: Scene, judgement: Judgement, line: int, font: Font
) -> None:
    """What each failed rule marks (a gap that is too small, the edge), in red, and an arrow from
    each mug to where it should go."""
    mugs = {mug.id: mug for mug in scene.mugs}
    for result in judgement.results:
        if result.failed:
            for start, end in result.marks():
                draw.line([start, end], fill=FAIL_COLOUR, width=line * 2)
    for placement in judgement.optimal_positions:
        mug = mugs[placement.mug_id]
        if placement.center is None or placement.move is None or placement.move.distance < 1:
            continue
        _arrow(draw, mug.center, placement.center, line * 2)
        mm = scene.scale.to_mm(placement.move.distance)
        length = f"{placement.move.distance:.0f} px" if mm is None else f"{mm:.0f} mm"
        _label(draw, placement.center, f"move {mug.id} {length}", FAIL_COLOUR, font)


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
