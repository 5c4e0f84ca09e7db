"""The batch client (client/, run as scripts/submit_batch.py): inputs, batching, --local end to
end with the report in headless Chromium, and an endpoint on loopback that throttles, fails, and
gets killed halfway."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw

from client.batch import ResultsFile, make_batches
from client.inputs import Item, read_inputs
from scripts import submit_batch
from tests.conftest import ROOT
from worker.actions import Worker
from worker.schemas import ProgressOut

# run as a person runs it: `python -m scripts.submit_batch ...` from the repository root
SCRIPT = [sys.executable, "-m", "scripts.submit_batch"]


def desk_images(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """Simple desk-like pictures: a table, a dark laptop, a round mug, random places and sizes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = rng.choice([(480, 360), (640, 480), (800, 600)])
        image = Image.new("RGB", (width, height), (70, 70, 80))
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 20, width - 20, height - 20), fill=(160, 120, 80))
        x, y = rng.randint(40, width // 2), rng.randint(40, height // 2)
        draw.rectangle((x, y, x + width // 3, y + height // 4), fill=(40, 40, 45))
        mx, my, r = rng.randint(60, width - 60), rng.randint(60, height - 60), rng.randint(20, 40)
        draw.ellipse((mx - r, my - r, mx + r, my + r), fill=rng.choice(["white", "red", "blue"]))
        path = folder / f"desk_{index:02d}.{'png' if index % 3 == 0 else 'jpg'}"
        image.save(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------- pure parts


def test_inputs_from_folders_globs_csv_and_jsonl(tmp_path: Path) -> None:
    desk_images(tmp_path / "imgs", 3)
    (tmp_path / "list.csv").write_text(
        "url,desk,camera\nhttps://example.com/a.jpg,A1,top\nhttps://example.com/b.jpg,A2,\n"
    )
    (tmp_path / "list.jsonl").write_text(
        '{"key": "originals/ab/x.jpg", "metadata": {"desk": "B1"}}\n\n{"path": "imgs/desk_00.png"}\n'
    )
    items = read_inputs(
        [
            str(tmp_path / "imgs"),
            str(tmp_path / "imgs" / "*.jpg"),  # the same files again: each image once
            str(tmp_path / "list.csv"),
            str(tmp_path / "list.jsonl"),
        ]
    )
    kinds = [(item.kind, item.metadata) for item in items]
    assert kinds[:3] == [("path", {})] * 3
    assert kinds[3] == ("url", {"desk": "A1", "camera": "top"})
    assert kinds[4] == ("url", {"desk": "A2"})
    assert kinds[5] == ("key", {"desk": "B1"})
    assert items[6].value == str(tmp_path / "imgs" / "desk_00.png")
    assert len(items) == 7
    assert all(re.fullmatch(r"i[0-9a-f]{16}", item.item_id) for item in items)


def test_inputs_with_nothing_usable_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("name\nfoo\n")
    with pytest.raises(SystemExit, match="needs a 'url', 'key' or 'path'"):
        read_inputs([str(tmp_path / "bad.csv")])
    with pytest.raises(SystemExit, match="no images found"):
        read_inputs([str(tmp_path / "nothing-*.jpg")])


def test_batches_respect_size_and_payload(tmp_path: Path) -> None:
    paths = desk_images(tmp_path, 7)
    items = [Item(str(p), "path", str(p)) for p in paths]
    assert [len(b) for b in make_batches(items, 3, 10**9)] == [3, 3, 1]
    # a payload cap below two images sends each alone (one image over the cap still goes, alone)
    assert all(len(b) == 1 for b in make_batches(items, 8, 1))
    # one camera profile per job: a change of camera starts the next job
    cameras = ["a", "a", None, None, "a", "b", "b"]
    by_camera = [
        Item(str(p), "path", str(p), camera=cam) for p, cam in zip(paths, cameras, strict=True)
    ]
    assert [[i.camera for i in b] for b in make_batches(by_camera, 8, 10**9)] == [
        ["a", "a"],
        [None, None],
        ["a"],
        ["b", "b"],
    ]


def test_a_torn_last_line_is_dropped_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(
        '{"key": "a", "status": "ok"}\n{"key": "a", "status": "failed"}\n{"key": "b", "sta'
    )
    results = ResultsFile(path)
    assert results.done == {"a": {"key": "a", "status": "failed"}}
    assert path.read_text() == '{"key": "a", "status": "failed"}\n'


# ---------------------------------------------------------------------------- --local


def worker_env(demo_model_dir: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "YOLO_", "HF_"))}
    env.update(MODEL_DIR=str(demo_model_dir), DATA_DIR=str(data_dir), WARMUP_IMGSZ="320")
    return env


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is missing: run scripts/test_services.sh (make test does)")
    return found


def browse(report: Path, screenshot: Path) -> str:
    """Open the report in headless Chromium: a screenshot, and the DOM after the page loaded."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={screenshot.parent / 'chromium-profile'}",
    ]
    url = report.absolute().as_uri()
    subprocess.run(
        [chromium(), *flags, f"--screenshot={screenshot}", "--window-size=1280,2000", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dom.stdout


@pytest.mark.slow
def test_local_run_on_20_images_then_a_rerun_does_no_work(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    desk_images(tmp_path / "imgs", 20)
    out = tmp_path / "out"
    command = [*SCRIPT, "--local", str(tmp_path / "imgs"), "--out", str(out)]
    env = worker_env(demo_model_dir, tmp_path / "data")
    first = subprocess.run(
        [*command, "--batch-size", "4", "--options", '{"imgsz": 320}', "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "20 images, 0 already done, 20 to run" in first.stdout
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 20
    rows = [json.loads(line) for line in lines]
    assert {row["status"] for row in rows} == {"ok"}
    assert all(row["result"]["models"]["detector"]["demo"] for row in rows)
    before = (out / "results.jsonl").read_text()

    second = subprocess.run(
        [*command, "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "20 images, 20 already done, 0 to run" in second.stdout
    assert (out / "results.jsonl").read_text() == before

    dom = browse(out / "report.html", tmp_path / "report.png")
    assert dom.count('<tr class="') == 20
    assert 'data-thumbnails="20"' in dom
    screenshot = Image.open(tmp_path / "report.png")
    assert screenshot.size == (1280, 2000)
    assert (
        len(set(screenshot.convert("L").resize((64, 100)).get_flattened_data())) > 20
    )  # not a blank page


# ---------------------------------------------------------------------------- endpoint


class FakeEndpoint(ThreadingHTTPServer):
    """RunPod's /v2/<endpoint>/run and /status/<job> on loopback, answering with a real worker.

    ``faults`` lists HTTP statuses to answer /run with before accepting (429, 500, ...);
    ``delay_s`` holds each job IN_PROGRESS for that long.
    """

    def __init__(self, worker: Worker, faults: list[int], delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), FakeEndpointHandler)
        self.worker = worker
        self.faults = list(faults)
        self.status_faults: list[int] = []
        self.progress_polls: list[dict[str, Any]] = []  # IN_PROGRESS outputs, one per poll
        self.batches: dict[str, dict[str, Any]] = {}  # the batch-jobs API
        self.failing_requests: set[int] = set()  # batch requests (by index) that fail whole
        self.delay_s = delay_s
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, int]] = []
        self.submitted_items: list[str] = []
        self.cancelled: list[str] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v2"


class FakeEndpointHandler(BaseHTTPRequestHandler):
    server: FakeEndpoint

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if "/batch" in self.path:
            self._batch_post(body)
            return
        if "/cancel/" in self.path:
            server.cancelled.append(self.path.rsplit("/", 1)[1])
            self._answer(200, {"status": "CANCELLED"})
            return
        assert self.headers["Authorization"] == "Bearer test-key"
        with server.lock:
            status = server.faults.pop(0) if server.faults else 200
            server.calls.append(("run", status))
            if status != 200:
                self._answer(status, {"error": "try again"})
                return
            job_id = f"job-{len(server.jobs) + 1}"
            server.jobs[job_id] = {"request": body, "started": time.monotonic()}
            server.submitted_items.extend(item["id"] for item in body["input"]["images"])
        assert body["policy"]["executionTimeout"] > 0 and body["policy"]["ttl"] > 0
        self._answer(200, {"id": job_id, "status": "IN_QUEUE"})

    def do_GET(self) -> None:
        server = self.server
        if "/batch/" in self.path:
            self._batch_get()
            return
        job_id = self.path.rsplit("/", 1)[1]
        job = server.jobs[job_id]
        if time.monotonic() - job["started"] < server.delay_s:
            self._answer(200, {"id": job_id, "status": "IN_PROGRESS"})
            return
        if server.progress_polls:
            output = server.progress_polls.pop(0)
            self._answer(200, {"id": job_id, "status": "IN_PROGRESS", "output": output})
            return
        with server.lock:
            if "output" not in job:
                job["output"] = server.worker.handle(
                    {"id": job_id, "input": job["request"]["input"]}
                )
        self._answer(200, {"id": job_id, "status": "COMPLETED", "output": job["output"]})

    # RunPod's batch-jobs API (beta), as serverless/advanced-workflows/batch-jobs documents it.

    def _batch_post(self, body: Any) -> None:
        server = self.server
        assert self.headers["Authorization"] == "Bearer test-key"
        parts = urlsplit(self.path).path.split("/")  # /v2/<ep>/batch[/<id>[/<verb>]]
        with server.lock:
            if len(parts) == 4:
                assert isinstance(body, list)  # a top-level array of {"input": ...}
                batch_id = f"batch_{len(server.batches) + 1}"
                server.batches[batch_id] = {
                    "status": "DRAFT",
                    "requests": list(body),
                    "answers": [],
                }
                self._answer(200, {"id": batch_id, "status": "DRAFT"})
                return
            batch = server.batches[parts[4]]
            verb = parts[5]
            if verb == "requests":
                assert batch["status"] == "DRAFT" and len(json.dumps(body)) <= 10 * 1024 * 1024
                assert all(set(job) == {"input"} for job in body["requests"])
                batch["requests"].extend(body["requests"])
            elif verb == "finalize":
                batch["status"] = "FINALIZED"
            elif verb == "cancel":
                batch["status"] = "CANCELLED"
            self._answer(200, {"id": parts[4], "status": batch["status"]})

    def _batch_get(self) -> None:
        """Each status poll runs one more request through the worker (so progress shows); the
        answers page in reverse order, two at a time, as the API promises no order."""
        server = self.server
        url = urlsplit(self.path)
        parts = url.path.split("/")
        with server.lock:
            batch = server.batches[parts[4]]
            answers = batch["answers"]
            if len(parts) == 6:
                query = dict(pair.split("=") for pair in url.query.split("&"))
                offset, limit = int(query["offset"]), min(2, int(query["limit"]))
                page = list(reversed(answers))[offset : offset + limit]
                more = offset + limit < len(answers)
                self._answer(200, {"requests": page, "total": len(answers), "hasMore": more})
                return
            if batch["status"] == "FINALIZED" and len(answers) < len(batch["requests"]):
                index = len(answers)
                request = batch["requests"][index]
                answer: dict[str, Any] = {"id": f"req_{index}"}
                if index in server.failing_requests:
                    answer |= {"status": "FAILED", "error": "Handler raised an exception: timeout"}
                else:
                    output = server.worker.handle({"id": answer["id"], "input": request["input"]})
                    answer |= {"status": "COMPLETED", "output": output}
                answers.append(answer)
            failed = sum(a["status"] == "FAILED" for a in answers)
            self._answer(
                200,
                {
                    "id": parts[4],
                    "status": batch["status"],
                    "requestTotal": len(batch["requests"]),
                    "requestCompleted": len(answers) - failed,
                    "requestFailed": failed,
                    "requestInProgress": 0,
                },
            )


@pytest.fixture
def endpoint(make_worker) -> Iterator[FakeEndpoint]:
    server = FakeEndpoint(make_worker(), faults=[])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint_env(endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key")
    monkeypatch.setenv("RUNPOD_ENDPOINT_BASE_URL", endpoint.base_url)
    return {
        **os.environ,
        "RUNPOD_API_KEY": "test-key",
        "RUNPOD_ENDPOINT_BASE_URL": endpoint.base_url,
    }


FAST = ["--retry-wait", "0.01", "--poll", "0.01", "--no-progress"]


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_throttling_and_server_errors_are_retried(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    desk_images(tmp_path / "imgs", 6)
    endpoint.faults = [429, 500, 503]
    code = submit_batch.main(
        [str(tmp_path / "imgs"), "--endpoint", "ep1", "--out", str(tmp_path / "out"),
         "--batch-size", "2", "--concurrency", "1", "--rules", "At most 3 mugs", *FAST]
    )  # fmt: skip
    assert code == 0
    statuses = [status for _, status in endpoint.calls]
    assert statuses[:3] == [429, 500, 503] and statuses[3:] == [200, 200, 200]
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 6 and {row["status"] for row in rows} == {"ok"}
    assert {row["job_id"] for row in rows} == {"job-1", "job-2", "job-3"}
    assert rows[0]["result"]["rules"][0]["type"] == "count"
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_failed_status_poll_asks_again_about_the_same_job(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    desk_images(tmp_path / "imgs", 2)
    endpoint.status_faults = [502, 500]
    code = submit_batch.main(
        [str(tmp_path / "imgs"), "--endpoint", "ep1", "--out", str(tmp_path / "out"), *FAST]
    )
    assert code == 0
    assert [status for _, status in endpoint.calls] == [200]  # one job, never submitted twice
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    assert {row["status"] for row in rows} == {"ok"}


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_metadata_from_a_csv_reaches_the_worker(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    (path,) = desk_images(tmp_path / "imgs", 1)
    (tmp_path / "list.csv").write_text(f"path,desk\n{path},A7\n")
    code = submit_batch.main(
        [str(tmp_path / "list.csv"), "--endpoint", "ep1", "--out", str(tmp_path / "out"), *FAST]
    )
    assert code == 0
    (row,) = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    assert row["result"]["metadata"] == {"batch": "out", "desk": "A7"}


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_camera_profiles_per_image_and_per_run(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    """A ``camera_profile`` column names each image's stored camera; ``--camera`` covers the rest.
    A job names one camera, so images of different cameras go in different jobs."""
    for name, mm_per_px in (("overhead", 0.5), ("side", 0.8)):
        put = {"action": "put_camera", "name": name, "calibration": {"mm_per_px": mm_per_px}}
        assert "error" not in endpoint.worker.handle({"input": put})
    a, b, c = desk_images(tmp_path / "imgs", 3)
    (tmp_path / "list.csv").write_text(
        f"path,desk,camera_profile\n{a},A1,overhead\n{b},A2,\n{c},A1,overhead\n"
    )
    code = submit_batch.main(
        [str(tmp_path / "list.csv"), "--endpoint", "ep1", "--out", str(tmp_path / "out"),
         "--camera", "side", "--concurrency", "1", *FAST]
    )  # fmt: skip
    assert code == 0
    sent = [(job["request"]["input"].get("camera"), len(job["request"]["input"]["images"]))
            for job in endpoint.jobs.values()]  # fmt: skip
    assert sent == [("overhead", 1), ("side", 1), ("overhead", 1)]
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    by_desk = {row["result"]["metadata"]["desk"]: row["result"] for row in rows}
    assert by_desk["A2"]["scale"]["source"] == "camera:side"
    assert {
        row["result"]["scale"]["mm_per_px"]
        for row in rows
        if row["result"]["metadata"]["desk"] == "A1"
    } == {0.5}
    assert all("camera_profile" not in row["result"]["metadata"] for row in rows)


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_job_failure_is_recorded_per_image(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    desk_images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"not an image")
    code = submit_batch.main(
        [str(tmp_path / "imgs"), "--endpoint", "ep1", "--out", str(tmp_path / "out"), *FAST]
    )
    assert code == 0
    rows = {
        Path(row["key"]).name: row
        for row in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())
    }
    assert rows["broken.jpg"]["status"] == "failed"
    assert rows["broken.jpg"]["error"].startswith("invalid_image:")
    assert rows["desk_00.png"]["status"] == "ok"


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT])
def test_killed_halfway_then_rerun_completes_without_duplicates(
    endpoint: FakeEndpoint, endpoint_env: dict[str, str], tmp_path: Path, stop_signal: int
) -> None:
    desk_images(tmp_path / "imgs", 10)
    endpoint.delay_s = 0.4
    out = tmp_path / "out"
    command = [*SCRIPT, str(tmp_path / "imgs"), "--endpoint", "ep1",
               "--out", str(out), "--batch-size", "1", "--concurrency", "2", *FAST]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=endpoint_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a shell starts background jobs with SIGINT ignored, and the child would inherit that
        # when the tests themselves run in the background: give it SIGINT as a terminal would
        preexec_fn=_sigint_default,
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        not results.exists() or len(results.read_text().splitlines()) < 3
    ):
        time.sleep(0.05)
    process.send_signal(stop_signal)
    process.communicate(timeout=60)
    if stop_signal == signal.SIGINT:
        assert process.returncode == 130
        assert (out / "report.html").is_file()  # Ctrl-C still writes the report
        assert endpoint.cancelled  # and cancels what was in flight
    done_before = {
        json.loads(line)["item_id"]
        for line in results.read_text().splitlines()
        if line.endswith("}")
    }
    assert 3 <= len(done_before) < 10
    submitted_before = len(endpoint.submitted_items)

    endpoint.delay_s = 0.0
    assert submit_batch.main(command[len(SCRIPT) :]) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [row["key"] for row in rows]
    assert len(keys) == 10 and len(set(keys)) == 10
    resubmitted = endpoint.submitted_items[submitted_before:]
    assert not set(resubmitted) & done_before  # finished images were not sent again


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_running_jobs_progress_moves_the_bar(
    endpoint: FakeEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a status poll of a running batch shows (the worker's progress) reaches the bar."""
    desk_images(tmp_path / "imgs", 4)
    endpoint.progress_polls = [
        ProgressOut(stage=stage, images=4, done=done, failed=0).model_dump()
        for stage, done in (("detect", 0), ("analyze", 1), ("analyze", 3))
    ]
    code = submit_batch.main(
        [str(tmp_path / "imgs"), "--endpoint", "ep1", "--out", str(tmp_path / "out"),
         "--batch-size", "4", "--retry-wait", "0.01", "--poll", "0.01"]
    )  # fmt: skip
    assert code == 0
    bar = capsys.readouterr().err
    assert [endpoint.calls[0]] == endpoint.calls  # one job
    assert 0 < bar.index("1/4") < bar.index("3/4") < bar.index("4/4")


def read_rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def batch_api_run(tmp_path: Path, images: int) -> list[str]:
    """``images`` desk pictures, and the arguments that send them as one batch job, 2 per job."""
    desk_images(tmp_path / "imgs", images)
    return [str(tmp_path / "imgs"), "--endpoint", "ep1", "--api", "batch",
            "--out", str(tmp_path / "out"), "--batch-size", "2", *FAST]  # fmt: skip


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_the_batch_jobs_api_runs_the_whole_set_as_one_batch(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    argv = batch_api_run(tmp_path, 5)
    out = tmp_path / "out"
    assert submit_batch.main(argv) == 0
    (batch,) = endpoint.batches.values()
    assert batch["status"] == "FINALIZED" and len(batch["requests"]) == 3
    assert endpoint.calls == []  # no /run
    rows = read_rows(out)
    assert len(rows) == 5 and {row["status"] for row in rows} == {"ok"}
    assert {row["job_id"] for row in rows} == {"req_0", "req_1", "req_2"}
    assert not (out / "batch.json").exists() and (out / "report.html").is_file()

    assert submit_batch.main(argv) == 0
    assert len(endpoint.batches) == 1  # nothing left to do


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_batch_request_that_fails_whole_fails_its_images_only(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    argv = batch_api_run(tmp_path, 4)
    endpoint.failing_requests = {1}
    assert submit_batch.main(argv) == 0
    rows = read_rows(tmp_path / "out")
    assert sorted(row["status"] for row in rows) == ["failed", "failed", "ok", "ok"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert {row["error"] for row in failed} == {
        "in one of the batch's 1 failed requests: Handler raised an exception: timeout (x1)"
    }


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_rerun_collects_the_batch_an_earlier_run_left_running(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    """--ttl ran out (or Ctrl-C): the batch keeps running on RunPod; the next run waits for it."""
    argv = batch_api_run(tmp_path, 4)
    out = tmp_path / "out"
    assert submit_batch.main([*argv, "--ttl", "0"]) == 130
    assert (out / "batch.json").exists() and not (out / "results.jsonl").exists()

    assert submit_batch.main(argv) == 0

    assert len(endpoint.batches) == 1
    assert len(read_rows(out)) == 4 and not (out / "batch.json").exists()


@pytest.mark.usefixtures("endpoint_env")
def test_a_batch_a_kill_left_in_draft_is_cancelled_and_made_anew(
    endpoint: FakeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = batch_api_run(tmp_path, 2)
    out = tmp_path / "out"
    out.mkdir()
    endpoint.batches["batch_1"] = {"status": "DRAFT", "requests": [], "answers": []}
    state = {"endpoint": "ep1", "batch_id": "batch_1", "finalized": False, "items": []}
    (out / "batch.json").write_text(json.dumps(state))

    assert submit_batch.main(argv) == 0

    assert endpoint.batches["batch_1"]["status"] == "CANCELLED"
    assert endpoint.batches["batch_2"]["status"] == "FINALIZED"
    assert len(read_rows(out)) == 2


@pytest.mark.slow
@pytest.mark.usefixtures("endpoint_env")
def test_a_batch_finalized_just_before_a_kill_is_waited_for_not_cancelled(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    """The kill came between /finalize and noting it in batch.json: the batch is running."""
    argv = batch_api_run(tmp_path, 2)
    out = tmp_path / "out"
    assert submit_batch.main([*argv, "--ttl", "0"]) == 130
    state = json.loads((out / "batch.json").read_text())
    (out / "batch.json").write_text(json.dumps(state | {"finalized": False}))

    assert submit_batch.main(argv) == 0

    assert [batch["status"] for batch in endpoint.batches.values()] == ["FINALIZED"]
    assert len(read_rows(out)) == 2
