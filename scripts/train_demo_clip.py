"""Train the demo CLIP on crops of generated scenes and real photos, and measure it on held-out crops.

    python -m scripts.train_demo_clip          # ~15 min on 2 CPU cores: models/weights/demo-clip
    python -m scripts.train_demo_clip --out /tmp/clip --train-scenes 100 --steps 200   # a quick probe

The crops and captions are training.demo_clip's: objects, distractors, table stretches and the
demo detector's phantom cups of generated scenes (train seed 1, validation seed 2, held-out seed
700001), random boxes and phantom cups on real photos without mugs (Debian's opencv-doc; three in
four train, the rest validate). The threshold on the mug score is the one with the best balanced
accuracy on validation. Held out: generated crops of a seed used nowhere else, and crops of the
photos ``python -m scripts.real_photos`` measures on (never trained on): random boxes, the
detector's cup candidates, and the real mug of scikit-image's coffee photo.

Writes OUT/model.safetensors and OUT/config.json (fp16), and OUT/train.json: sizes, seeds, counts,
loss curve, seconds, and the validation and held-out accuracies. models/demo.py builds the demo
CLIP folder from them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from models.demo import DEMO_CLIP_WEIGHTS, clip_tokenizer
from training.demo_clip import (
    CLIP_HELD_OUT_SEED,
    TRAIN_NEGATIVES,
    TRAIN_SEED,
    VAL_NEGATIVES,
    VAL_SEED,
    ClipShape,
    accuracy,
    best_threshold,
    counts,
    demo_detector,
    draw_weights,
    mug_scores,
    new_model,
    photo_samples,
    pixel_batches,
    real_photo_samples,
    save,
    scene_samples,
    train,
)
from worker.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEMO_CLIP_WEIGHTS)
    parser.add_argument("--train-scenes", type=int, default=800)
    parser.add_argument("--val-scenes", type=int, default=150)
    parser.add_argument("--held-out-scenes", type=int, default=200)
    parser.add_argument("--views", type=int, default=2, help="jittered crops per object")
    parser.add_argument("--photo-crops", type=int, default=60, help="random boxes per real photo")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from transformers import CLIPImageProcessor

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    shape = ClipShape()
    detector = demo_detector(args.threads)
    crops, scenes = scene_samples(TRAIN_SEED, args.train_scenes, detector, views=args.views)
    crops += photo_samples(TRAIN_NEGATIVES, args.photo_crops, args.seed, detector)
    val, _ = scene_samples(VAL_SEED, args.val_scenes, detector)
    val += photo_samples(VAL_NEGATIVES, args.photo_crops, args.seed + 1, detector)
    held, _ = scene_samples(CLIP_HELD_OUT_SEED, args.held_out_scenes, detector)
    real = real_photo_samples(args.photo_crops, args.seed + 2, detector)
    gathered = time.perf_counter()
    print(
        f"{len(crops)} train crops, {len(scenes)} scenes, {len(val)} val, {len(held)} held out, "
        f"{len(real)} real ({gathered - started:.0f} s)",
        flush=True,
    )

    processor = CLIPImageProcessor(
        size={"shortest_edge": shape.image_size},
        crop_size={"height": shape.image_size, "width": shape.image_size},
    )
    tokenizer = clip_tokenizer()
    as_tensors = {
        name: (pixel_batches(processor, samples), torch.tensor([s.caption for s in samples]))
        for name, samples in (
            ("train", crops),
            ("scenes", scenes),
            ("val", val),
            ("held", held),
            ("real", real),
        )
    }
    model = new_model(shape, args.seed)
    curve = train(
        model,
        tokenizer,
        as_tensors["train"],
        as_tensors["scenes"],
        draw_weights(crops),
        args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
    )
    trained = time.perf_counter()
    scores = {
        name: mug_scores(model, tokenizer, as_tensors[name][0]) for name in ("val", "held", "real")
    }
    # the worker decides at MUG_SCORE_MIN (default 0.5): the figures are at that threshold; the
    # best one on validation is recorded beside them, as a check that 0.5 is near it
    worker = float(Settings.model_fields["mug_score_min"].default)
    record = {
        "name": "clip-tiny trained on generated desks and real negatives (demo)",
        "shape": asdict(shape),
        "seeds": {
            "train": TRAIN_SEED,
            "val": VAL_SEED,
            "held_out": CLIP_HELD_OUT_SEED,
            "init": args.seed,
        },
        "scenes": {
            "train": args.train_scenes,
            "val": args.val_scenes,
            "held_out": args.held_out_scenes,
        },
        "real_negatives": {"train": list(TRAIN_NEGATIVES), "val": list(VAL_NEGATIVES)},
        "crops": {"train": counts(crops), "val": counts(val), "held_out": counts(held)},
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "threads": args.threads,
        "mug_score_min": worker,
        "best_threshold_on_validation": best_threshold(scores["val"], val),
        "validation": accuracy(scores["val"], val, worker),
        "held_out": accuracy(scores["held"], held, worker),
        "real_photos": accuracy(scores["real"], real, worker),
        "loss": curve,
        "wall_time_s": {
            "data": round(gathered - started, 1),
            "train": round(trained - gathered, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "versions": {
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
    }
    save(model, args.out, record)
    print(
        json.dumps(
            {
                k: record[k]
                for k in (
                    "mug_score_min",
                    "best_threshold_on_validation",
                    "validation",
                    "held_out",
                    "real_photos",
                    "wall_time_s",
                )
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
