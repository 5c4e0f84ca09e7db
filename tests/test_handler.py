"""The RunPod entry point as RunPod runs it: ``import handler`` and ``python handler.py --test_input``.

Each test runs a fresh interpreter from the repository root, as the container does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Records every attempt to reach the network, then imports the handler and runs one job.
NETWORK_PROBE = """
import json, sys
events = []
def watch(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        events.append([event, repr(args)[:120]])
sys.addaudithook(watch)
import handler
job = json.loads(sys.argv[1])
output = handler.handler(job)
json.dumps(output, allow_nan=False)
print(json.dumps({"output": output, "network": events}))
"""


def worker_env(model_dir: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "YOLO_", "HF_"))}
    env.update(MODEL_DIR=str(model_dir), DATA_DIR=str(data_dir), WARMUP_IMGSZ="320")
    return env


def run_in_repo(
    args: list[str], env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter from the repository root, as the container starts one; output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_import_handler_and_call_it_without_touching_the_network(
    demo_model_dir: Path, tmp_path: Path, desk_b64: str
) -> None:
    job = {"id": "j1", "input": {"image": desk_b64, "options": {"imgsz": 320}}}
    completed = run_in_repo(
        ["-c", NETWORK_PROBE, json.dumps(job)], worker_env(demo_model_dir, tmp_path / "data"), 240
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["network"] == []
    output = report["output"]
    assert output["analysis_id"] == "j1"
    assert output["models"]["detector"]["demo"] is True
    assert output["persisted"]["record"] is True
    assert (tmp_path / "data" / "analyses" / "j1.json").is_file()


def test_runpod_local_test_input_and_the_demo_summary(demo_model_dir: Path, tmp_path: Path) -> None:
    env = worker_env(demo_model_dir, tmp_path / "data")
    job = json.loads((ROOT / "test_input.json").read_text())
    completed = run_in_repo(["handler.py", "--test_input", json.dumps(job)], env, 240)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "completed successfully" in completed.stdout + completed.stderr
    summary = run_in_repo(
        ["scripts/show_result.py", "local_test", "--data-dir", str(tmp_path / "data")], None, 60
    )
    assert summary.returncode == 0, summary.stderr
    assert "result keys match SPEC section 3" in summary.stdout
    assert "[DEMO MODEL]" in summary.stdout


def test_a_bad_configuration_stops_the_worker_with_one_clear_line(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    env = worker_env(demo_model_dir, tmp_path / "data")
    env.update(MAX_IMAGE_BYTES="lots", DEVICE="tpu")
    completed = run_in_repo(["-c", "import handler"], env, 120)
    assert completed.returncode != 0
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("worker cannot start: invalid configuration:")
    assert "DEVICE:" in last and "MAX_IMAGE_BYTES:" in last
