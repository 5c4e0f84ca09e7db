"""Print a stored analysis as a short, readable summary (``make demo`` ends with this).

    python -m scripts.show_result [ANALYSIS_ID] [--data-dir DIR]

Reads the record from the embedded results store (DATA_DIR/analyses), the same record the worker
wrote, and checks that its keys are the result keys of SPEC section 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from storage.embedded import JsonRecordStore
from worker.schemas import AnalysisResult

# The result keys of SPEC 3; ``embedding`` appears only with options.return_embedding.
RESULT_KEYS = set(AnalysisResult.model_fields) - {"embedding"}


def _mm(value: float | None) -> str:
    return "" if value is None else f" / {value:.0f} mm"


def summarise(result: dict[str, Any]) -> list[str]:
    image, models = result["image"], result["models"]
    lines = [
        f"analysis {result['analysis_id']}: {image['width']}x{image['height']} {image['format']} "
        f"from {image['source']} (sha256 {image['sha256'][:12]}...)",
    ]
    for kind in ("detector", "clip"):
        model = models.get(kind)
        if model:
            demo = "  [DEMO MODEL]" if model["demo"] else ""
            lines.append(f"  {kind:<9} {model['name']} ({model['sha256'][:12]}...){demo}")
    lines.append(f"  device    {models['device']} {models['dtype']}")
    classes: dict[str, int] = {}
    for detection in result["detections"]:
        classes[detection["class"]] = classes.get(detection["class"], 0) + 1
    found = ", ".join(f"{n} {name}" for name, n in sorted(classes.items())) or "nothing"
    lines.append(f"detections: {found}")
    scale = result["scale"]
    lines.append(
        "scale: "
        + (
            f"{scale['mm_per_px']:.3f} mm/px from {scale['source']}"
            + (" (approximate)" if scale["approximate"] else "")
            if scale["mm_per_px"]
            else "unknown (no calibration, no reference object found)"
        )
    )
    lines.append(f"surface: {result['surface']['source']} {result['surface']['box']}")
    for mug in result["mugs"]:
        edge = mug["edge_distance"]
        edge_text = (
            "no table edge in view" if edge is None else f"{edge['px']:.0f} px{_mm(edge['mm'])}"
        )
        lines.append(f"  {mug['id']}: {mug['position_label']} at {mug['center']}, edge {edge_text}")
        for neighbour in mug["nearest"][:3]:
            lines.append(
                f"      {neighbour['class']} {neighbour['detection_id']}: "
                f"gap {neighbour['gap_px']:.0f} px{_mm(neighbour['gap_mm'])}"
            )
    for rejected in result.get("rejected_mugs", []):
        score = rejected["mug_score"]
        lines.append(
            f"  not a mug: cup {rejected['detection_id']} (mug score "
            + ("none" if score is None else f"{score:.2f}")
            + ")"
        )
    if result["scene"]:
        label, probability = max(result["scene"]["labels"].items(), key=lambda kv: kv[1])
        lines.append(f"scene: {label} ({probability:.2f})")
    for rule in result["rules"]:
        lines.append(f"  rule [{rule['status']}] {rule['message']}")
    positioning = result["positioning"]
    lines.append(
        f"compliant: {positioning['compliant']}  safety score: {positioning['safety_score']}"
    )
    lines.append(f"feedback: {result['feedback']['summary']}")
    lines.extend(f"  - {tip}" for tip in result["feedback"]["recommendations"])
    lines.append(f"annotated image: {result['artifacts']['annotated_url']}")
    lines.append(f"persisted: {result['persisted']}")
    lines.append(f"timings (ms): {result['timings_ms']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise a stored analysis.")
    parser.add_argument("analysis_id", nargs="?", default="local_test")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    record = JsonRecordStore(args.data_dir).get_analysis(args.analysis_id)
    if record is None:
        print(f"no analysis {args.analysis_id!r} under {args.data_dir}/analyses", file=sys.stderr)
        return 1
    print("\n".join(summarise(record)))
    missing = RESULT_KEYS - set(record)
    if missing:
        print(f"result is missing SPEC section 3 keys: {sorted(missing)}", file=sys.stderr)
        return 1
    print(f"result keys match SPEC section 3 ({len(RESULT_KEYS)} keys)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
