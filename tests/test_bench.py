"""``python -m scripts.bench`` as a user scripts it: ``--json`` prints one JSON object and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_handler import run_in_repo, worker_env

pytestmark = pytest.mark.slow


def report_of(command: list[str], demo_model_dir: Path, tmp_path: Path) -> Any:
    """What the benchmark prints on stdout: one JSON object (its log goes to stderr)."""
    completed = run_in_repo(command, worker_env(demo_model_dir, tmp_path / "data"), 300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_bench_json_is_the_only_output(demo_model_dir: Path, tmp_path: Path) -> None:
    command = ["-m", "scripts.bench", "--sizes", "1,2", "--repeat", "1"]
    command += ["--imgsz", "128", "--augment", "--json"]
    report = report_of(command, demo_model_dir, tmp_path)
    assert report["augment"] is True and report["imgsz"] == 128
    assert set(report["batches"]) == {"1", "2"}
    for figures in report["batches"].values():
        assert figures["ms_per_image"] > 0
        assert figures["detect_ms"] > 0


def test_worst_case_bench_runs_each_case_in_its_own_process(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    command = ["-m", "scripts.bench_worst", "--cases", "crowd_299,metadata_max", "--json"]
    rows = report_of(command, demo_model_dir, tmp_path)["cases"]
    assert [row["case"] for row in rows] == ["crowd_299", "metadata_max"]
    assert all(row["answer"] == "ok" and row["peak_mb"] > 0 for row in rows)


def test_concurrency_bench_reports_its_ratios(demo_model_dir: Path, tmp_path: Path) -> None:
    command = ["-m", "scripts.bench", "--concurrency", "3", "--io-latency-ms", "20"]
    command += ["--imgsz", "128", "--repeat", "1"]
    report = report_of(command, demo_model_dir, tmp_path)
    assert report["jobs"] == 3 and report["io_latency_ms"] == 20
    for ratio in ("concurrent_speedup", "singles_vs_batch", "job_vs_bare"):
        assert report[ratio] > 0
    assert report["concurrent_p50_ms"] <= report["concurrent_p95_ms"]
    assert 0 < report["model_thread_busy_pct"] <= 100
    assert report["detector_images"] >= 3 * 3  # sequential, concurrent and batch rounds
