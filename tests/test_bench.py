"""scripts/bench.py as a user scripts it: ``--json`` prints one JSON object and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_handler import worker_env

pytestmark = pytest.mark.slow


def test_bench_json_is_the_only_output(demo_model_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, "scripts/bench.py", "--sizes", "1,2", "--repeat", "1"]
    command += ["--imgsz", "128", "--augment", "--json"]
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=worker_env(demo_model_dir, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["augment"] is True and report["imgsz"] == 128
    assert set(report["batches"]) == {"1", "2"}
    for figures in report["batches"].values():
        assert figures["ms_per_image"] > 0
        assert figures["detect_ms"] > 0
