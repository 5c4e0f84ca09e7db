"""The RunPod entry point as RunPod runs it: ``import handler`` and ``python handler.py --test_input``.

Each test runs a fresh interpreter from the repository root, as the container does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT
from worker.progress import STAGES
from worker.schemas import ProgressOut

pytestmark = pytest.mark.slow

# Records every attempt to reach the network, then imports the handler and runs one job.
NETWORK_PROBE = """
import asyncio, json, sys
events = []
def watch(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        events.append([event, repr(args)[:120]])
sys.addaudithook(watch)
import handler
job = json.loads(sys.argv[1])
output = asyncio.run(handler.handler(job))
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
        ["-m", "scripts.show_result", "local_test", "--data-dir", str(tmp_path / "data")], None, 60
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


# One batch job through the handler as RunPod runs it; its progress goes to RunPod's job API.
PROGRESS_PROBE = """
import asyncio, json, sys, time
import handler
with open(sys.argv[1]) as job:
    output = asyncio.run(handler.handler(json.load(job)))
print(json.dumps({"returned_at": time.time(), "summary": output["summary"]}), flush=True)
time.sleep(2)  # runpod posts each update from a daemon thread of its own
"""


def test_a_batch_reports_progress_to_runpod_while_it_runs(
    demo_model_dir: Path, tmp_path: Path, desk_b64: str
) -> None:
    """RunPod's progress_update posts to RUNPOD_WEBHOOK_POST_OUTPUT (here a loopback server);
    a status poll of the running job shows the latest update as its output."""
    received: list[tuple[float, str, dict]] = []

    class JobApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((time.time(), self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), JobApi)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    env = worker_env(demo_model_dir, tmp_path / "data")
    env["RUNPOD_WEBHOOK_POST_OUTPUT"] = f"http://127.0.0.1:{server.server_port}/job-done/$ID?p=1"
    images = [{"id": f"i{n}", "image": desk_b64} for n in range(6)]
    images.append({"id": "broken", "image": "bm90IGFuIGltYWdl"})
    job = {"id": "batch-1", "input": {"images": images, "options": {"imgsz": 320, "cache": False}}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    try:
        completed = run_in_repo(["-c", PROGRESS_PROBE, str(tmp_path / "job.json")], env, 240)
    finally:
        server.shutdown()
        server.server_close()
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["summary"]["images"] == 7 and answer["summary"]["failed"] == 1

    assert received, "no progress update reached the job API"
    assert {path.split("?")[0] for _, path, _ in received} == {"/job-done/batch-1"}
    arrived = sorted(received, key=lambda update: update[0])
    updates = [ProgressOut.model_validate(body["output"]) for _, _, body in arrived]
    assert {body["status"] for _, _, body in received} == {"IN_PROGRESS"}
    assert (updates[0].stage, updates[0].done) == ("decode", 0)
    order = [(STAGES.index(update.stage), update.done) for update in updates]
    assert order == sorted(order), "updates arrived out of order"
    assert all(update.images == 7 and update.done < 7 for update in updates)
    assert all(update.failed == 1 for update in updates if update.stage != "decode")
    assert min(at for at, _, _ in received) < answer["returned_at"], "seen only after the job"
