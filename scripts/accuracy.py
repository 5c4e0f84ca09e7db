"""Measure the whole worker on held-out generated scenes: mugs found, where, at what scale, and verdicts.

    python scripts/accuracy.py                    # MODEL_DIR from the env, 200 scenes, demo settings
    python scripts/accuracy.py --conf 0.4 --no-augment
    python scripts/accuracy.py --model-dir /tmp/probe --count 20 --json

The scenes come from synthetic/ with seed 900001, which training never uses. The worker is built
in-process on a temporary DATA_DIR (nothing is written into the repository) and gets two passes:

1. each scene as an ``analyze`` job with its true scale (``calibration: {"mm_per_px": ...}``: the
   calibration belongs to the job, so one scene per job), the fixed rule set
   (synthetic.FIXED_RULES) and ``options`` of the demo job (models.demo: imgsz 384, conf 0.45,
   test-time augmentation; ``--imgsz``, ``--conf``, ``--no-augment`` change them), no store, no
   cache, no annotation, no CLIP;
   this gives mug precision / recall at IoU 0.5 (greedy matching per image), the centre error and
   the agreement of every (rule, true mug) verdict with the truth (a missed mug disagrees);
2. the same scenes in batched ``analyze`` jobs without calibration, to measure the scale the
   worker estimates itself from reference objects (REFERENCE_SIZES_MM).

CLIP is off by default: the demo CLIP has random weights, so its mug check is noise (--clip turns
it on).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.demo import DEMO_AUGMENT, DEMO_CONF, DEMO_IMGSZ  # noqa: E402
from models.runtime import prepare_offline  # noqa: E402
from synthetic import FIXED_RULES, HELD_OUT_SEED, read_truths, write_scenes  # noqa: E402

IOU_MATCH = 0.5
IOU_LOOKALIKE = 0.3  # a false mug this much on an unlabelled thing is blamed on that thing
Box = Sequence[float]


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    shared = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - shared
    return shared / union if union > 0 else 0.0


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


def centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


# ------------------------------------------------------------------ running the worker


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_worker(
    args: argparse.Namespace, scenes: Path, truths: list[dict[str, Any]], scratch: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Both passes; returns the detector's description, the two result lists and timings."""
    from worker.bootstrap import build_worker
    from worker.settings import ConfigError, load_settings

    overrides: dict[str, Any] = {
        "data_dir": scratch / "data",
        "warmup_imgsz": args.imgsz,
        "torch_threads": args.threads,
        "log_level": "WARNING",
    }
    if args.model_dir is not None:
        overrides["model_dir"] = args.model_dir
    if args.weights is not None:
        overrides["yolo_weights"] = args.weights
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        raise SystemExit(f"accuracy: {error}") from None
    worker = build_worker(settings)
    if worker.models.detector is None:
        raise SystemExit(f"accuracy: {worker.models.problem('detector')}")
    options: dict[str, Any] = {
        "imgsz": args.imgsz,
        "store": False,
        "cache": False,
        "annotate": False,
        "clip": args.clip,
        "augment": args.augment,
        "conf": args.conf,
    }
    rules = [dict(rule) for rule in FIXED_RULES]
    images = [base64.b64encode((scenes / truth["file"]).read_bytes()).decode() for truth in truths]

    start = time.perf_counter()
    calibrated = []
    for index, (image, truth) in enumerate(zip(images, truths, strict=True)):
        job = {
            "id": f"accuracy-{index}",
            "input": {
                "image": image,
                "calibration": {"mm_per_px": truth["mm_per_px"]},
                "rules": rules,
                "options": options,
            },
        }
        calibrated.append(worker.handle(job))
    calibrated_s = time.perf_counter() - start

    start = time.perf_counter()
    uncalibrated: list[dict[str, Any]] = []
    for number, chunk in enumerate(batches(list(enumerate(images)), args.batch)):
        items = [{"id": str(index), "image": image} for index, image in chunk]
        job = {
            "id": f"scale-{number}",
            "input": {"images": items, "rules": rules, "options": options},
        }
        output = worker.handle(job)
        uncalibrated.extend(output.get("results") or [output] * len(items))
    uncalibrated_s = time.perf_counter() - start

    detector = worker.models.describe().detector
    described = {"name": detector.name, "sha256": detector.sha256, "demo": detector.demo}
    timings = {"calibrated_s": calibrated_s, "uncalibrated_s": uncalibrated_s}
    return described, calibrated, uncalibrated, timings


# ------------------------------------------------------------------ measuring


def measure(
    truths: list[dict[str, Any]],
    calibrated: list[dict[str, Any]],
    uncalibrated: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every figure of the report from the truths and the worker's two sets of results."""
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
        true_mugs = [o["box"] for o in truth["objects"] if o["class"] == "cup"]
        boxes = {d["id"]: d["box"] for d in result["detections"]}
        mugs = [(m["id"], boxes[m["detection_id"]]) for m in result["mugs"]]
        matched = greedy_match(true_mugs, [box for _, box in mugs])
        for view in ("all", truth["view"]):
            counts[view].update(truth=len(true_mugs), found=len(mugs), matched=len(matched))
        for ti, fi in matched.items():
            (tx, ty), (fx, fy) = centre(true_mugs[ti]), centre(mugs[fi][1])
            distance = ((tx - fx) ** 2 + (ty - fy) ** 2) ** 0.5
            errors_px.append(distance)
            errors_mm.append(distance * truth["mm_per_px"])
        for fi in set(range(len(mugs))) - set(matched.values()):
            false_on[_blame(mugs[fi][1], truth)] += 1
        statuses = {(r["rule_id"], r["mug_id"]): r["status"] for r in result["rules"]}
        for verdict in truth["verdicts"]:
            ti = true_mugs.index(verdict["mug_box"])
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
        (iou(box, o["box"]), o["class"]) for o in truth["objects"] if o["class"] != "dining table"
    ]
    candidates += [(iou(box, d["box"]), d["kind"]) for d in truth["distractors"]]
    overlap, kind = max(candidates, default=(0.0, ""))
    return kind if overlap >= IOU_LOOKALIKE else "background"


# ------------------------------------------------------------------ output


def describe(report: dict[str, Any]) -> str:
    """The report for a person."""
    setup = report["setup"]
    mugs = report["mugs"]
    lines = [
        f"worker accuracy on {report['scenes']} held-out generated scenes (seed {setup['seed']}; "
        f"{mugs['top']['true']} mugs top-down, {mugs['slanted']['true']} slanted)",
        f"  detector {setup['detector']['name']} ({setup['detector']['sha256'][:12]}), imgsz "
        f"{setup['imgsz']}, conf {setup['conf']}, test-time augmentation "
        f"{'on' if setup['augment'] else 'off'}",
        f"  CLIP mug check: {setup['clip']}",
    ]
    if report["failed_jobs"]:
        lines.append(f"  {report['failed_jobs']} jobs failed (left out)")
    everything = mugs["all"]
    lines.append(
        f"mugs (IoU >= {IOU_MATCH}, greedy per image): {everything['true']} true, "
        f"{everything['found']} found, {everything['matched']} matched: "
        f"precision {everything['precision']}, recall {everything['recall']}"
    )
    for view in ("top", "slanted"):
        v = mugs[view]
        lines.append(
            f"  {view:<8} precision {v['precision']}, recall {v['recall']} ({v['true']} true)"
        )
    if report["false_mugs_on"]:
        lines.append(f"  false mugs on: {json.dumps(report['false_mugs_on'])}")
    error = report["centre_error"]
    lines.append(
        f"centre error of matched mugs: mean {error['mean_px']} px, {error['mean_mm']} mm "
        f"(median {error['median_px']} px; mm at the true table-centre scale)"
    )
    estimate = report["scale"]["reference_estimate"]
    lines += [
        "scale: the calibrated pass uses the true mm/px (error 0)",
        f"  the worker's own estimate (second pass without calibration, reference objects): "
        f"found in {estimate['found']}/{estimate['of']} scenes, relative error mean "
        f"{estimate['mean_rel_error']}, median {estimate['median_rel_error']}",
    ]
    for key, value in estimate["by"].items():
        lines.append(f"    {key:<18} n={value['n']:<4} median {value['median_rel_error']}")
    overall = report["verdicts"]
    lines.append(
        f"rule verdicts: {overall['pairs']} (rule, true mug) pairs, agreement {overall['agreement']}"
        " (a missed mug counts as disagreement)"
    )
    for group in ("by_type", "by_rule"):
        for key, value in report["verdicts"][group].items():
            lines.append(f"  {key:<14} {value['agreement']} ({value['pairs']} pairs)")
    if report["disagreements"]:
        lines.append(f"  disagreements (truth -> worker): {json.dumps(report['disagreements'])}")
    timing = report["timings"]
    lines.append(
        f"time: {timing['ms_per_scene_calibrated']} ms/scene one per job, "
        f"{timing['ms_per_scene_batched']} ms/scene in batches of {setup['batch']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="the model folder (default: MODEL_DIR)")
    parser.add_argument("--weights", help="detector file in it (default: YOLO_WEIGHTS)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out set seed")
    parser.add_argument("--count", type=int, default=200, help="number of scenes")
    parser.add_argument(
        "--imgsz", type=int, default=DEMO_IMGSZ, help="detector input size (%(default)s)"
    )
    parser.add_argument(
        "--conf", type=float, default=DEMO_CONF, help="detector confidence (%(default)s)"
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=DEMO_AUGMENT,
        help="test-time augmentation (options.augment; %(default)s)",
    )
    parser.add_argument("--clip", action="store_true", help="run the CLIP mug check too")
    parser.add_argument("--batch", type=int, default=16, help="scenes per job in the scale pass")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes generating scenes"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count: at least 1")

    # the libraries print to stdout; the report alone goes there (so --json is parseable)
    with (
        tempfile.TemporaryDirectory(prefix="accuracy-") as folder,
        contextlib.redirect_stdout(sys.stderr),
    ):
        scratch = Path(folder)
        prepare_offline(scratch / "runtime")
        scenes = scratch / "scenes"
        write_scenes(scenes, args.count, args.seed, jobs=args.jobs)
        truths = read_truths(scenes)
        detector, calibrated, uncalibrated, timings = run_worker(args, scenes, truths, scratch)

    report = measure(truths, calibrated, uncalibrated)
    report["setup"] = {
        "seed": args.seed,
        "detector": detector,
        "imgsz": args.imgsz,
        "augment": args.augment,
        "conf": args.conf,
        "clip": "on"
        if args.clip
        else "off (options.clip = false): every detected cup counts as a mug",
        "batch": args.batch,
    }
    report["timings"] = {
        "ms_per_scene_calibrated": round(1000 * timings["calibrated_s"] / args.count, 1),
        "ms_per_scene_batched": round(1000 * timings["uncalibrated_s"] / args.count, 1),
    }
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
