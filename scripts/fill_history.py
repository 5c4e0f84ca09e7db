"""Fill a DATA_DIR with a week of real analyses, to try the dashboard on (SPEC 11).

    MODEL_DIR=volume/models python -m scripts.fill_history --data-dir data-demo [--days 7]
    DATA_DIR=data-demo python -m dashboard

Each job is a real ``analyze`` job of the worker (built as the handler builds it, stores from the
environment, so with ``MONGODB_URI`` set it fills MongoDB) on a generated desk scene (seed 7, a
seed no model was trained or validated on): four desks, two cameras, an edge rule for all and one
rule of each desk's own. Only the records' ``created_at`` is then moved back, one day per round of
jobs, as a week of jobs would have left it; everything else is what the worker stored.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.demo import DEMO_AUGMENT, DEMO_CONF, DEMO_IMGSZ
from training.synthetic import SceneOptions, generate_scene

DESKS = {
    "north-1": ["mugs at least 15 cm from the laptop (critical)"],
    "north-2": ["mugs at least 10 cm from the keyboard (warning)"],
    "south-1": ["at most 3 mugs on the desk"],
    "south-2": ["mugs at least 20 cm apart (info)"],
}
COMMON_RULES = ["mugs at least 5 cm from the table edge"]
SCENE_SEED = 7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ["DATA_DIR"] = str(args.data_dir)
    from worker.bootstrap import build_worker

    worker = build_worker()
    now = datetime.now(UTC)
    index = 0
    for day in range(args.days):
        for number, (desk, rules) in enumerate(DESKS.items()):
            scene = generate_scene(SCENE_SEED, index, SceneOptions(widths=(960, 960)))
            index += 1
            buffer = io.BytesIO()
            scene.image.save(buffer, format="JPEG", quality=85)
            job_id = f"{desk}-day{day}"
            output = worker.handle(
                {
                    "id": job_id,
                    "input": {
                        "image": base64.b64encode(buffer.getvalue()).decode(),
                        "rules": [*COMMON_RULES, *rules],
                        "options": {
                            "imgsz": DEMO_IMGSZ,
                            "conf": DEMO_CONF,
                            "augment": DEMO_AUGMENT,
                        },
                        "metadata": {"desk": desk, "camera": f"cam-{number % 2 + 1}"},
                    },
                }
            )
            if "error" in output:
                print(f"{job_id}: {output['error']}")
                continue
            record = worker.stores.records.get_analysis(job_id)
            if record is not None:
                record["created_at"] = (now - timedelta(days=args.days - 1 - day)).isoformat()
                worker.stores.records.put_analysis(record)
            failed = sum(rule["status"] == "fail" for rule in output["rules"])
            print(f"{job_id}: {len(output['mugs'])} mugs, {failed} failed rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
