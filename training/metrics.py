"""The worker's results scored against the truth of generated scenes.

Mug precision and recall at IoU 0.5 (greedy matching per image), the centre error of the matched
mugs, what the false mugs sit on, the error of the scale the worker estimates itself, and the
agreement of every (rule, true mug) verdict with the truth (a missed mug disagrees). Pure: the
truths are those ``training.synthetic`` writes, the results the worker's job outputs.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from positioning.geometry import Box, iou

IOU_MATCH = 0.5
IOU_LOOKALIKE = 0.3  # a false mug this much on an unlabelled thing is blamed on that thing


def greedy_match(truth: Sequence[Box], found: Sequence[Box]) -> dict[int, int]:
    """Pairs (truth index -> found index), best IoU first, each used once, IoU >= 0.5."""
    pairs = sorted(
        ((iou(t, f), ti, fi) for ti, t in enumerate(truth) for fi, f in enumerate(found)),
        reverse=True,
    )
    matched: dict[int, int] = {}
    used: set[int] = set()
    for overlap, ti, fi in pairs:
        if overlap < IOU_MATCH:
            break
        if ti not in matched and fi not in used:
            matched[ti] = fi
            used.add(fi)
    return matched


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def measure(
    truths: list[dict[str, Any]],
    calibrated: list[dict[str, Any]],
    uncalibrated: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every figure of the report from the truths and the worker's two sets of results.

    ``calibrated``: one result per scene, judged at the true scale (detection, centres, verdicts);
    ``uncalibrated``: one per scene without calibration (the worker's own scale estimate).
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    errors_px: list[float] = []
    errors_mm: list[float] = []
    false_on: Counter[str] = Counter()
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    failed_jobs = 0
    for truth, result in zip(truths, calibrated, strict=True):
        if "error" in result:
            failed_jobs += 1
            continue
        true_lists = [o["box"] for o in truth["objects"] if o["class"] == "cup"]
        true_mugs = [Box.from_list(box) for box in true_lists]
        boxes = {d["id"]: Box.from_list(d["box"]) for d in result["detections"]}
        mugs = [(m["id"], boxes[m["detection_id"]]) for m in result["mugs"]]
        matched = greedy_match(true_mugs, [box for _, box in mugs])
        for view in ("all", truth["view"]):
            counts[view].update(truth=len(true_mugs), found=len(mugs), matched=len(matched))
        for ti, fi in matched.items():
            (tx, ty), (fx, fy) = true_mugs[ti].center, mugs[fi][1].center
            distance = math.hypot(tx - fx, ty - fy)
            errors_px.append(distance)
            errors_mm.append(distance * truth["mm_per_px"])
        for fi in set(range(len(mugs))) - set(matched.values()):
            false_on[_blame(mugs[fi][1], truth)] += 1
        statuses = {(r["rule_id"], r["mug_id"]): r["status"] for r in result["rules"]}
        for verdict in truth["verdicts"]:
            ti = true_lists.index(verdict["mug_box"])
            found = (
                statuses.get((verdict["rule_id"], mugs[matched[ti]][0])) if ti in matched else None
            )
            agree = found == verdict["status"]
            for key in ("all", f"type:{verdict['type']}", f"rule:{verdict['rule_id']}"):
                verdicts[key].update(pairs=1, agree=int(agree))
            if not agree:
                outcomes["mug missed" if found is None else f"{verdict['status']} -> {found}"] += 1

    scale_errors: dict[str, list[float]] = defaultdict(list)
    found_scale = 0
    for truth, result in zip(truths, uncalibrated, strict=True):
        scale = result.get("scale") or {}
        if scale.get("mm_per_px") is None:
            continue
        found_scale += 1
        error = abs(scale["mm_per_px"] - truth["mm_per_px"]) / truth["mm_per_px"]
        for key in ("all", scale["source"], truth["view"]):
            scale_errors[key].append(error)

    def detection(view: str) -> dict[str, Any]:
        c = counts[view]
        return {
            "true": c["truth"],
            "found": c["found"],
            "matched": c["matched"],
            "precision": ratio(c["matched"], c["found"]),
            "recall": ratio(c["matched"], c["truth"]),
        }

    return {
        "scenes": len(truths),
        "failed_jobs": failed_jobs,
        "mugs": {view: detection(view) for view in ("all", "top", "slanted")},
        "false_mugs_on": dict(false_on.most_common()),
        "centre_error": {
            "mean_px": mean(errors_px),
            "mean_mm": mean(errors_mm),
            "median_px": median(errors_px),
        },
        "scale": {
            "calibrated_pass_error": 0.0,
            "reference_estimate": {
                "found": found_scale,
                "of": len(truths),
                "mean_rel_error": mean(scale_errors["all"]),
                "median_rel_error": median(scale_errors["all"]),
                "by": {
                    key: {"n": len(v), "median_rel_error": median(v)}
                    for key, v in sorted(scale_errors.items())
                    if key != "all"
                },
            },
        },
        "verdicts": {
            **_agreement(verdicts["all"]),
            "by_type": {
                k[5:]: _agreement(c) for k, c in sorted(verdicts.items()) if k[:5] == "type:"
            },
            "by_rule": {
                k[5:]: _agreement(c) for k, c in sorted(verdicts.items()) if k[:5] == "rule:"
            },
        },
        "disagreements": dict(outcomes.most_common()),
    }


def _agreement(counts: Counter[str]) -> dict[str, Any]:
    return {"pairs": counts["pairs"], "agreement": ratio(counts["agree"], counts["pairs"])}


def _blame(box: Box, truth: dict[str, Any]) -> str:
    """What a false mug sits on: a labelled object, an unlabelled look-alike, or nothing."""
    candidates = [
        (iou(box, Box.from_list(o["box"])), o["class"])
        for o in truth["objects"]
        if o["class"] != "dining table"
    ]
    candidates += [(iou(box, Box.from_list(d["box"])), d["kind"]) for d in truth["distractors"]]
    overlap, kind = max(candidates, default=(0.0, ""))
    return kind if overlap >= IOU_LOOKALIKE else "background"
