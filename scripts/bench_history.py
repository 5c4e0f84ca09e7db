"""How fast the embedded store answers history queries (SPEC 11) over many records.

    python -m scripts.bench_history [--records 10000] [--repeat 5] [--json]

Fills a temporary ``DATA_DIR`` with generated analysis records (``history_record``: what the
pipeline keeps, a 512-float embedding and detections included, so the files are their real size),
then times, in one run: building the summary index from the files alone (a store written by an
earlier version), and each query warm (median of ``--repeat``): ``stats`` by day, rule and desk,
a filtered ``stats``, and the first and a later page of ``list_analyses``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage.embedded import HISTORY_INDEX, JsonRecordStore
from storage.history import Cursor, HistoryQuery

START = datetime(2026, 11, 1, tzinfo=UTC)
DESKS = ("A1", "A2", "B1", "B2", "C1")
RULE_IDS = ("distance_laptop", "edge_margin", "keyboard_zone", "max_mugs")
SEVERITIES = ("critical", "warning", "info")


def history_record(rng: random.Random, number: int, embedding_size: int = 512) -> dict[str, Any]:
    """An analysis record with the fields history reads, spread over 30 days and five desks."""
    created = START + timedelta(seconds=rng.randrange(30 * 24 * 3600))
    microsecond = 0 if rng.random() < 0.2 else rng.randrange(1, 1_000_000)  # isoformat: no fraction
    rules = [
        {
            "rule_id": rule_id,
            "type": "distance",
            "mug_id": f"m{mug}",
            "status": rng.choice(("pass", "pass", "fail", "unknown")),
            "severity": rng.choice(SEVERITIES),
            "message": "...",
        }
        for rule_id in rng.sample(RULE_IDS, rng.randrange(len(RULE_IDS) + 1))
        for mug in range(rng.randrange(1, 3))
    ]
    metadata: dict[str, Any] = {"batch": f"b{number % 3}"}
    if rng.random() < 0.9:
        metadata["desk"] = rng.choice(DESKS)
    if rng.random() < 0.5:
        metadata["camera"] = rng.choice(("cam-1", "cam-2"))
    if rng.random() < 0.1:
        metadata["floor"] = rng.choice((1, 2, [1, 2]))
    return {
        "analysis_id": f"job-{number:05d}",
        "created_at": created.replace(microsecond=microsecond).isoformat(),
        "image": {"sha256": f"{number:064x}"},
        "metadata": metadata,
        "rules": rules,
        "positioning": {
            "compliant": not any(rule["status"] == "fail" for rule in rules),
            "safety_score": round(rng.random(), 3),
        },
        "artifacts": {
            "original_key": f"originals/{number:02x}/{number:064x}.jpg",
            "annotated_key": f"annotated/job-{number:05d}.jpg",
            "annotated_url": None,
        },
        "detections": [
            {"class": "cup", "box": [rng.random() * 600 for _ in range(4)]} for _ in range(8)
        ],
        "embedding": [rng.random() for _ in range(embedding_size)],
        "cache_hit": rng.random() < 0.1,
    }


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = JsonRecordStore(root)
        for number in range(args.records):
            store.put_analysis(history_record(rng, number))
        record_mb = sum(p.stat().st_size for p in (root / "analyses").iterdir()) / 1e6
        (root / HISTORY_INDEX).unlink()
        for journal in root.glob(f"{HISTORY_INDEX}-*"):
            journal.unlink()
        fresh = JsonRecordStore(root)
        start = time.perf_counter()
        fresh.list_analyses(HistoryQuery(), 1)
        rebuild_ms = round((time.perf_counter() - start) * 1000, 1)
        everything, desk = HistoryQuery(), HistoryQuery(metadata=(("desk", "A1"),))
        page = fresh.list_analyses(everything, 50)
        after = Cursor(page[-1]["created_at"], page[-1]["analysis_id"])
        timings = {
            "stats_by_day": _median_ms(
                lambda: fresh.analysis_stats(everything, "day"), args.repeat
            ),
            "stats_by_rule": _median_ms(
                lambda: fresh.analysis_stats(everything, "rule"), args.repeat
            ),
            "stats_by_desk": _median_ms(
                lambda: fresh.analysis_stats(everything, "metadata.desk"), args.repeat
            ),
            "stats_one_desk_by_day": _median_ms(
                lambda: fresh.analysis_stats(desk, "day"), args.repeat
            ),
            "list_first_page": _median_ms(lambda: fresh.list_analyses(everything, 50), args.repeat),
            "list_next_page": _median_ms(
                lambda: fresh.list_analyses(everything, 50, after), args.repeat
            ),
        }
    report = {
        "records": args.records,
        "record_files_mb": round(record_mb, 1),
        "index_rebuild_ms": rebuild_ms,
        "warm_ms": timings,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.records} records ({report['record_files_mb']} MB of JSON files)")
    print(f"index built from the files alone: {rebuild_ms} ms")
    for name, ms in timings.items():
        print(f"  {name:<24} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
