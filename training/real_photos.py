"""The worker on real photographs that ship inside public packages (issue 22's measure).

Generated scenes say how the worker does on what it was trained for; these photos say what a
newcomer sees on real input: phantom mugs on photos that hold none, and on the photo with a real
mug, whether that mug is found (IoU >= 0.5 with a box drawn by hand) or a mug is reported
elsewhere. Every photo is read from the installed package (scikit-image, scikit-learn and
matplotlib are development requirements; ultralytics is the worker's), never downloaded.
"""

from __future__ import annotations

import base64
import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from positioning.geometry import Box, iou
from training.metrics import IOU_MATCH


@dataclass(frozen=True)
class Photo:
    """One photograph: the package it ships in, its path there, its licence, and the boxes
    (x1, y1, x2, y2, in the photo's pixels) of the mugs or cups it holds, drawn by hand."""

    package: str
    path: str
    licence: str
    mugs: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.package}:{Path(self.path).name}"

    def locate(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.path
        return path if path.is_file() else None


PHOTOS = (
    # the cup and its handle, without the saucer (drawn on the 600 x 400 original)
    Photo("skimage", "data/coffee.png", "CC0 (Rachel Michetti)", mugs=((170, 17, 413, 290),)),
    Photo("skimage", "data/astronaut.png", "public domain (NASA)"),
    Photo("skimage", "data/brick.png", "CC0 (CC0Textures)"),
    Photo("skimage", "data/camera.png", "CC0 (Lav Varshney)"),
    Photo("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    Photo("skimage", "data/coins.png", "no known copyright restrictions"),
    Photo("skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    Photo("skimage", "data/retina.jpg", "CC0 1.0"),
    Photo("skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    Photo("skimage", "data/clock_motion.png", "public domain (Stefan van der Walt)"),
    Photo("skimage", "data/grass.png", "CC0 (linolafett, DeviantArt)"),
    Photo("skimage", "data/gravel.png", "CC0 (CC0Textures)"),
    Photo("skimage", "data/text.png", "public domain (Wikipedia, Corner.png)"),
    Photo("skimage", "data/cell.png", "CC0"),
    Photo("skimage", "data/ihc.png", "no known copyright restrictions"),
    Photo("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
    Photo("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
    Photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "public domain (US Navy)"),
    Photo("ultralytics", "assets/bus.jpg", "AGPL-3.0 (ultralytics' assets)"),
    Photo("ultralytics", "assets/zidane.jpg", "AGPL-3.0 (ultralytics' assets)"),
)


def judge_photo(photo: Photo, result: dict[str, Any]) -> dict[str, Any]:
    """One photo's row: the cups the detector reported, the mugs kept after the CLIP check, the
    best overlap of a kept mug with each true mug, and the kept mugs that match no true one."""
    boxes = {detection["id"]: Box.from_list(detection["box"]) for detection in result["detections"]}
    kept = [boxes[mug["detection_id"]] for mug in result["mugs"]]
    truths = [Box(*truth) for truth in photo.mugs]
    best = [max((iou(truth, box) for box in kept), default=0.0) for truth in truths]
    phantoms = [box for box in kept if all(iou(truth, box) < IOU_MATCH for truth in truths)]
    return {
        "photo": photo.name,
        "licence": photo.licence,
        "true_mugs": len(photo.mugs),
        "mugs_kept": len(kept),
        "found": sum(overlap >= IOU_MATCH for overlap in best),
        "best_iou": [round(overlap, 3) for overlap in best],
        "phantoms": len(phantoms),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    empty = [row for row in rows if row["true_mugs"] == 0]
    with_mugs = [row for row in rows if row["true_mugs"] > 0]
    return {
        "mug_free_photos": len(empty),
        "mug_free_photos_with_a_phantom": sum(row["phantoms"] > 0 for row in empty),
        "photos_with_a_mug": len(with_mugs),
        "true_mugs": sum(row["true_mugs"] for row in with_mugs),
        "true_mugs_found": sum(row["found"] for row in with_mugs),
        "mug_photos_with_a_phantom": sum(row["phantoms"] > 0 for row in with_mugs),
    }


def measure_photos(
    model_dir: Path | None, options: dict[str, Any], threads: int = 1
) -> dict[str, Any]:
    """Analyse every photo that is installed here; the missing are named, not skipped silently."""
    from models.runtime import prepare_offline

    with tempfile.TemporaryDirectory(prefix="real-photos-") as folder:
        scratch = Path(folder)
        prepare_offline(scratch / "runtime")
        # imported once the offline switches are set, as training.accuracy does
        from worker.bootstrap import build_worker
        from worker.settings import load_settings

        overrides: dict[str, Any] = {
            "data_dir": scratch / "data",
            "warmup_imgsz": options["imgsz"],
            "torch_threads": threads,
            "log_level": "WARNING",
        }
        if model_dir is not None:
            overrides["model_dir"] = model_dir
        worker = build_worker(load_settings(**overrides))
        rows: list[dict[str, Any]] = []
        missing: list[str] = []
        for photo in PHOTOS:
            path = photo.locate()
            if path is None:
                missing.append(photo.name)
                continue
            job = {
                "id": f"photo-{len(rows)}",
                "input": {
                    "image": base64.b64encode(path.read_bytes()).decode(),
                    "options": options | {"store": False, "cache": False, "annotate": False},
                },
            }
            result = worker.handle(job)
            if "error" in result:
                raise RuntimeError(f"{photo.name}: {result['error']}")
            rows.append(judge_photo(photo, result))
        models = {role: result["models"][role]["name"] for role in ("detector", "clip")}
    return {"models": models, "options": options, "photos": rows, "missing": missing} | {
        "summary": summarize(rows)
    }


def describe(report: dict[str, Any]) -> str:
    lines = [
        f"detector {report['models']['detector']}, clip {report['models']['clip']}",
        f"options {report['options']}",
        f"{'photo':40} {'true':>4} {'kept':>4} {'found':>5} {'phantoms':>8}  best IoU",
    ]
    for row in report["photos"]:
        lines.append(
            f"{row['photo']:40} {row['true_mugs']:>4} {row['mugs_kept']:>4} {row['found']:>5} "
            f"{row['phantoms']:>8}  {row['best_iou']}"
        )
    summary = report["summary"]
    lines.append(
        f"mug-free photos with a phantom mug: {summary['mug_free_photos_with_a_phantom']} of "
        f"{summary['mug_free_photos']}; true mugs found: {summary['true_mugs_found']} of "
        f"{summary['true_mugs']}; mug photos with a phantom elsewhere: "
        f"{summary['mug_photos_with_a_phantom']} of {summary['photos_with_a_mug']}"
    )
    if report["missing"]:
        lines.append(f"not installed here: {', '.join(report['missing'])}")
    return "\n".join(lines)
