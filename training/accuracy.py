"""The whole worker measured on held-out generated scenes, and the report for a person.

The worker is built in-process on a temporary DATA_DIR (nothing is written into the repository)
and gets two passes over the same scenes:

1. each scene as an ``analyze`` job with its true scale (``calibration: {"mm_per_px": ...}``: the
   calibration belongs to the job, so one scene per job), the fixed rule set
   (``training.synthetic.FIXED_RULES``) and the detector options of ``Setup``, with no store, no
   cache and no annotation: detection, centres and verdicts;
2. the same scenes in batched ``analyze`` jobs without calibration, to measure the scale the
   worker estimates itself from reference objects (REFERENCE_SIZES_MM).

``training.metrics.measure`` turns both into the figures.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.demo import DEMO_AUGMENT, DEMO_CONF, DEMO_IMGSZ
from models.runtime import prepare_offline
from training.metrics import IOU_MATCH, measure
from training.synthetic import FIXED_RULES, HELD_OUT_SEED, read_truths, write_scenes


class WorkerUnavailable(RuntimeError):
    """The worker cannot be built, or has no detector, with the given model folder."""


@dataclass(frozen=True)
class Setup:
    """The worker and the jobs measured: model folder, detector options, the scale pass' batch.

    The defaults are the demo job's detector options (models/demo.py). CLIP is off unless asked
    for: the demo CLIP has random weights, so its mug check would be noise.
    """

    model_dir: Path | None = None  # None: MODEL_DIR from the environment
    weights: str | None = None  # None: YOLO_WEIGHTS from the environment
    imgsz: int = DEMO_IMGSZ
    conf: float = DEMO_CONF
    augment: bool = DEMO_AUGMENT
    clip: bool = True
    batch: int = 16
    threads: int = 1


def measure_worker(
    setup: Setup, count: int, seed: int = HELD_OUT_SEED, jobs: int = 1
) -> dict[str, Any]:
    """Generate ``count`` scenes of ``seed``, run both passes and return the report."""
    with tempfile.TemporaryDirectory(prefix="accuracy-") as folder:
        scratch = Path(folder)
        prepare_offline(scratch / "runtime")
        scenes = scratch / "scenes"
        write_scenes(scenes, count, seed, jobs=jobs)
        truths = read_truths(scenes)
        detector, calibrated, uncalibrated, timings = run_worker(setup, scenes, truths, scratch)

    report = measure(truths, calibrated, uncalibrated)
    report["setup"] = {
        "seed": seed,
        "detector": detector,
        "imgsz": setup.imgsz,
        "augment": setup.augment,
        "conf": setup.conf,
        "clip": "on"
        if setup.clip
        else "off (options.clip = false): every detected cup counts as a mug",
        "batch": setup.batch,
    }
    report["timings"] = {
        "ms_per_scene_calibrated": round(1000 * timings["calibrated_s"] / count, 1),
        "ms_per_scene_batched": round(1000 * timings["uncalibrated_s"] / count, 1),
    }
    return report


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_worker(
    setup: Setup, scenes: Path, truths: list[dict[str, Any]], scratch: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Both passes; returns the detector's description, the two result lists and timings."""
    # imported once the offline switches are set (prepare_offline): the worker brings the model
    # libraries, which read them when they are imported
    from worker.bootstrap import build_worker
    from worker.settings import ConfigError, load_settings

    overrides: dict[str, Any] = {
        "data_dir": scratch / "data",
        "warmup_imgsz": setup.imgsz,
        "torch_threads": setup.threads,
        "log_level": "WARNING",
    }
    if setup.model_dir is not None:
        overrides["model_dir"] = setup.model_dir
    if setup.weights is not None:
        overrides["yolo_weights"] = setup.weights
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        raise WorkerUnavailable(str(error)) from None
    worker = build_worker(settings)
    if worker.models.detector is None:
        raise WorkerUnavailable(worker.models.problem("detector"))
    options: dict[str, Any] = {
        "imgsz": setup.imgsz,
        "store": False,
        "cache": False,
        "annotate": False,
        "clip": setup.clip,
        "augment": setup.augment,
        "conf": setup.conf,
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
    for number, chunk in enumerate(_batches(list(enumerate(images)), setup.batch)):
        items = [{"id": str(index), "image": image} for index, image in chunk]
        job = {
            "id": f"scale-{number}",
            "input": {"images": items, "rules": rules, "options": options},
        }
        output = worker.handle(job)
        uncalibrated.extend(output.get("results") or [output] * len(items))
    uncalibrated_s = time.perf_counter() - start

    assert worker.models.detector is not None  # the worker answered, so its detector is loaded
    detector = worker.models.detector.info
    described = {"name": detector.name, "sha256": detector.sha256, "demo": detector.demo}
    timings = {"calibrated_s": calibrated_s, "uncalibrated_s": uncalibrated_s}
    return described, calibrated, uncalibrated, timings


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
