"""A batch of images through the worker: jobs on an endpoint (/run, or one of RunPod's batch jobs)
or in this process, each finished image appended to OUT/results.jsonl, then OUT/report.html.

Several images go into each job (``batch_size``, and never more than ``max_payload_mb`` of base64
per job: RunPod's /run takes 10 MB). Jobs run ``concurrency`` at a time, with retries and
exponential backoff on 429, 5xx, connection errors and timed-out jobs. A running job's progress
(the worker's ``progress_update``, seen in each status poll) moves the bar.

Resumable: a re-run skips the images already in results.jsonl (``retry_failed`` tries the failed
ones again). Ctrl-C stops submitting, cancels what is in flight, and still writes the report for
what finished.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm import tqdm

from client.inputs import Item, read_inputs
from client.report import write_report

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
RESUBMIT_STATES = {"TIMED_OUT", "CANCELLED"}
RESULTS = "results.jsonl"
REPORT = "report.html"
BATCH_STATE = "batch.json"


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """One run: where the images go, what each job asks, and how hard to try (the options of
    ``python -m scripts.submit_batch``, which gives the defaults)."""

    inputs: list[str]  # folders, globs, .csv or .jsonl files
    out: Path  # results.jsonl, report.html, batch.json
    endpoint: str | None  # a RunPod endpoint id; None: the worker in this process
    api: Literal["run", "batch"]  # /run per job, or one batch job for the whole run
    name: str  # stored as every job's metadata and the report's title
    rules: list[Any] | None  # sentences or rule objects
    rule_set: str | None
    mm_per_px: float | None
    camera: str | None  # a stored camera profile for every image without its own
    options: dict[str, Any] | None  # analyze options
    batch_size: int  # images per job
    max_payload_mb: float  # per request
    concurrency: int  # jobs in flight
    retries: int  # tries after the first
    retry_wait: float  # the first backoff, s
    execution_timeout: int  # per job, s
    ttl: int  # per job, queue included, s
    webhook: str | None
    poll: float  # the first status poll interval, s
    retry_failed: bool
    no_progress: bool

    @property
    def local(self) -> bool:
        """The worker runs in this process: one job at a time, one model."""
        return self.endpoint is None

    @property
    def max_payload_bytes(self) -> int:
        """The request size cap every job and every batch-jobs call keeps under."""
        return int(self.max_payload_mb * 1024 * 1024)


# ---------------------------------------------------------------------------- results file


class ResultsFile:
    """OUT/results.jsonl: one line per finished image, appended as soon as it is known.

    A line cut short by a kill is dropped when the file is read back, and the file is rewritten
    with each image once (the last answer wins), so a resumed run starts from a clean file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.done: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "key" in row:
                    self.done[row["key"]] = row
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text("".join(json.dumps(row) + "\n" for row in self.done.values()))
            temporary.replace(path)

    def add(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, allow_nan=False) + "\n"
        with self._lock:
            self.done[row["key"]] = row
            with self.path.open("a") as out:
                out.write(line)
                out.flush()
                os.fsync(out.fileno())


def result_row(
    item: Item, job_id: str, output: dict[str, Any] | None, error: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": item.key,
        "item_id": item.item_id,
        "job_id": job_id,
        "status": "failed" if error else "ok",
        "finished_at": datetime.now(UTC).isoformat(),
        "metadata": item.metadata,
    }
    if error:
        row["error"] = error
    else:
        row["result"] = output
    return row


# ---------------------------------------------------------------------------- job runners


def _is_transient(error: BaseException) -> bool:
    """Worth another try: throttled, a server error, a lost connection or a timeout."""
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code == 429 or error.response.status_code >= 500
    return False


def http_retrying(config: BatchConfig) -> Retrying:
    """The retry policy of every request to RunPod: transient failures, jittered doubling waits."""
    return Retrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(config.retries + 1),
        wait=wait_exponential_jitter(
            multiplier=config.retry_wait, max=60, jitter=config.retry_wait
        ),
        reraise=True,
    )


def endpoint_access() -> tuple[str, str]:
    """The API key and the endpoints' base URL (``RUNPOD_ENDPOINT_BASE_URL`` overrides it)."""
    import runpod

    api_key = os.environ.get("RUNPOD_API_KEY")
    if not api_key:
        raise SystemExit("set RUNPOD_API_KEY (or use --local)")
    return api_key, os.environ.get("RUNPOD_ENDPOINT_BASE_URL", runpod.endpoint_url_base)


ShowDone = Callable[[int], None]


class ImagesShown:
    """The progress bar's share of one job: advanced as the job reports images done (a status poll
    of a running batch shows the worker's progress), and to the whole job when it ends."""

    _lock = threading.Lock()  # one bar, moved from every job's thread

    def __init__(self, bar: tqdm, images: int) -> None:
        self.bar = bar
        self.images = images
        self.shown = 0

    def to(self, done: int) -> None:
        with self._lock:
            step = min(done, self.images) - self.shown
            if step > 0:
                self.shown += step
                self.bar.update(step)
                self.bar.refresh()


class EndpointRunner:
    """Jobs on a RunPod endpoint through the runpod SDK's HTTP client: /run, then /status polls.

    An HTTP failure (429, 5xx, a lost connection) is retried on the same request: a failed /run
    is sent again, a failed /status poll asks again about the same job. Only a job that ended
    TIMED_OUT or CANCELLED is submitted anew.
    """

    def __init__(self, endpoint_id: str, config: BatchConfig, stop: threading.Event) -> None:
        import runpod
        from runpod.endpoint.runner import RunPodClient

        api_key, runpod.endpoint_url_base = endpoint_access()
        self.client = RunPodClient(api_key=api_key)
        self.client.endpoint_url_base = runpod.endpoint_url_base
        self.endpoint_id = endpoint_id
        self.poll_s = config.poll
        self.job_timeout_s = config.ttl
        self.attempts = config.retries + 1
        self.retry_wait = config.retry_wait
        self.config = config
        self.stop = stop
        self.in_flight: set[str] = set()
        self._lock = threading.Lock()

    def _http(self) -> Retrying:
        return http_retrying(self.config)

    def run(self, request: dict[str, Any], show: ShowDone) -> tuple[str, dict[str, Any]]:
        state: dict[str, Any] = {}
        job_id = ""
        for attempt in range(self.attempts):
            if self.stop.is_set():
                raise KeyboardInterrupt
            if attempt:
                self.stop.wait(min(60.0, self.retry_wait * 2**attempt))
            answer = self._http()(self.client.post, f"{self.endpoint_id}/run", request)
            job_id = str(answer["id"])
            with self._lock:
                self.in_flight.add(job_id)
            try:
                state = self._wait(job_id, show)
            finally:
                with self._lock:
                    self.in_flight.discard(job_id)
            if state.get("status") not in RESUBMIT_STATES:
                return job_id, state
        return job_id, state

    def _wait(self, job_id: str, show: ShowDone) -> dict[str, Any]:
        """Poll the job until it is final (or lost: reported as TIMED_OUT, to submit anew);
        a running batch's progress (its ``output``: images done) moves the bar."""
        deadline = time.monotonic() + self.job_timeout_s
        delay = self.poll_s
        while not self.stop.is_set():
            state = self._http()(self.client.get, f"{self.endpoint_id}/status/{job_id}")
            if state.get("status") in FINAL_STATES:
                return dict(state)
            output = state.get("output")
            if isinstance(output, dict) and isinstance(output.get("done"), int):
                show(output["done"])
            if time.monotonic() > deadline:
                self._cancel(job_id)
                return {
                    "status": "TIMED_OUT",
                    "error": f"not finished after {self.job_timeout_s} s",
                }
            self.stop.wait(delay)
            delay = min(delay * 1.5, 10.0)
        raise KeyboardInterrupt

    def _cancel(self, job_id: str) -> None:
        try:
            self.client.post(f"{self.endpoint_id}/cancel/{job_id}", {}, timeout=5)
        except Exception as error:  # best effort: the job's TTL ends it anyway
            print(f"could not cancel {job_id}: {error}", file=sys.stderr)

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self.in_flight)
        for job_id in jobs:
            self._cancel(job_id)


class LocalRunner:
    """Jobs in this process, through the same ``handler`` the endpoint runs (no endpoint needed)."""

    def __init__(self) -> None:
        from worker.bootstrap import build_worker

        self.worker = build_worker()
        self._lock = threading.Lock()

    def run(self, request: dict[str, Any], show: ShowDone) -> tuple[str, dict[str, Any]]:
        job_id = f"local-{uuid.uuid4().hex[:12]}"
        with self._lock:  # one model, one job at a time
            output = self.worker.handle(
                {"id": job_id, "input": request["input"]},
                lambda update: show(int(update["done"])),
            )
        if "error" in output:
            return job_id, {"status": "FAILED", "error": output["error"]}
        return job_id, {"status": "COMPLETED", "output": output}

    def cancel_all(self) -> None:
        """Nothing to cancel: a local job finishes before the next starts."""


# ---------------------------------------------------------------------------- batching


def make_batches(items: Sequence[Item], size: int, max_payload_bytes: int) -> list[list[Item]]:
    """Up to ``size`` images per job, no more base64 than fits in one request, and one camera
    profile per job (a job names one: images of another camera start the next job)."""
    batches: list[list[Item]] = []
    current: list[Item] = []
    current_bytes = 0
    for item in items:
        weight = _payload_bytes(item)
        full = len(current) >= size or current_bytes + weight > max_payload_bytes
        if current and (full or item.camera != current[0].camera):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += weight
    if current:
        batches.append(current)
    return batches


def _payload_bytes(item: Item) -> int:
    if item.kind != "path":
        return len(item.value) + 64
    return (Path(item.value).stat().st_size * 4) // 3 + 64


def job_request(batch: Sequence[Item], config: BatchConfig) -> dict[str, Any]:
    """The whole request body: the job input, the per-job policy, and the webhook if any."""
    job_input: dict[str, Any] = {
        "action": "analyze",
        "images": [
            {
                "id": item.item_id,
                **item.source(),
                **({"metadata": item.metadata} if item.metadata else {}),
            }
            for item in batch
        ],
        "metadata": {"batch": config.name},
    }
    if config.rules:
        job_input["rules"] = config.rules
    if config.rule_set:
        job_input["rule_set"] = config.rule_set
    if config.mm_per_px:
        job_input["calibration"] = {"mm_per_px": config.mm_per_px}
    camera = batch[0].camera or config.camera if batch else config.camera
    if camera:
        job_input["camera"] = camera
    if config.options:
        job_input["options"] = config.options
    request: dict[str, Any] = {
        "input": job_input,
        "policy": {"executionTimeout": config.execution_timeout * 1000, "ttl": config.ttl * 1000},
    }
    if config.webhook:
        request["webhook"] = config.webhook
    return request


def run_batch(
    batch: Sequence[Item],
    runner: EndpointRunner | LocalRunner,
    results: ResultsFile,
    config: BatchConfig,
    shown: ImagesShown,
) -> int:
    """Run one job and record every image of it; returns how many were recorded."""
    try:
        job_id, state = runner.run(job_request(batch, config), shown.to)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # gave up (or an image file vanished): each image says why
        job_id, state = "", {"status": "FAILED", "error": f"{type(error).__name__}: {error}"}
    record_job(batch, job_id, state, results)
    shown.to(len(batch))
    return len(batch)


def record_job(
    batch: Sequence[Item], job_id: str, state: dict[str, Any], results: ResultsFile
) -> None:
    """One line per image of a finished job: its analysis, or the error of the image or job."""
    if state.get("status") != "COMPLETED":
        message = str(state.get("error") or f"job ended {state.get('status')}")
        for item in batch:
            results.add(result_row(item, job_id, None, message))
        return
    by_id = {r.get("id"): r for r in (state.get("output") or {}).get("results", [])}
    for item in batch:
        output = by_id.get(item.item_id)
        if output is None:
            results.add(result_row(item, job_id, None, "the job returned no result for this image"))
        elif "error" in output:
            results.add(result_row(item, job_id, None, str(output["error"])))
        else:
            results.add(result_row(item, job_id, output, None))


# ---------------------------------------------------------------------------- batch-jobs API


class BatchJobs:
    """The whole run as one of RunPod's batch jobs (beta; docs: serverless/advanced-workflows/
    batch-jobs): for large offline runs that may take hours, on the endpoint's batch workers.

    POST /{endpoint}/batch makes a DRAFT; POST .../requests adds the jobs (at most
    --max-payload-mb per call, the API takes 10 MiB); POST .../finalize starts it; GET
    /{endpoint}/batch/{id} counts requestCompleted + requestFailed up to requestTotal; GET
    .../requests pages through the answers (offset, limit, hasMore). The answers come in no
    order and carry no input, so each is matched to its images by the item ids in its results.

    Resumable: OUT/batch.json names the batch as soon as it exists, so a re-run (after Ctrl-C, a
    kill, or --ttl running out) waits for that batch instead of submitting the images again; a
    batch a kill left in DRAFT (its jobs perhaps half added) is cancelled and made anew.
    """

    PAGE = 50
    MAX_REQUESTS = 5000  # per batch (the API's limit)

    def __init__(self, endpoint_id: str, config: BatchConfig, stop: threading.Event) -> None:
        api_key, base = endpoint_access()
        self.url = f"{base.rstrip('/')}/{endpoint_id}/batch"
        self.endpoint_id = endpoint_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.state_file = config.out / BATCH_STATE
        self.config = config
        self.stop = stop

    def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        def send() -> Any:
            response = self.session.request(method, self.url + path, json=body, timeout=60)
            response.raise_for_status()
            return response.json() if response.content else None

        return http_retrying(self.config)(send)

    def pending(self) -> dict[str, Any] | None:
        """The batch an earlier run finalized on this endpoint, if its answers are not in yet."""
        if not self.state_file.exists():
            return None
        state = json.loads(self.state_file.read_text())
        if state.get("endpoint") != self.endpoint_id:
            return None
        if not state.get("finalized"):
            status = self._call("GET", f"/{state['batch_id']}").get("status")
            if status != "DRAFT":  # finalized after all: a kill came before it was noted
                return state | {"finalized": True}
            print(f"batch {state['batch_id']} was never finalized: cancelling it, submitting anew")
            self._call("POST", f"/{state['batch_id']}/cancel")
            self.state_file.unlink()
            return None
        return state

    def submit(self, batches: list[list[Item]]) -> dict[str, Any]:
        if len(batches) > self.MAX_REQUESTS:
            raise SystemExit(
                f"{len(batches)} jobs: a batch takes at most {self.MAX_REQUESTS}; raise "
                "--batch-size or split the inputs"
            )
        batch_id = str(self._call("POST", "", [])["id"])
        state = {"endpoint": self.endpoint_id, "batch_id": batch_id, "finalized": False}
        self._save(state | {"items": [item.key for batch in batches for item in batch]})
        chunk: list[dict[str, Any]] = []
        size = 0
        limit = self.config.max_payload_bytes
        for batch in batches:
            job = {"input": job_request(batch, self.config)["input"]}
            weight = len(json.dumps(job))
            if chunk and size + weight > limit:
                self._call("POST", f"/{batch_id}/requests", {"requests": chunk})
                chunk, size = [], 0
            chunk.append(job)
            size += weight
        if chunk:
            self._call("POST", f"/{batch_id}/requests", {"requests": chunk})
        self._call("POST", f"/{batch_id}/finalize")
        state = json.loads(self.state_file.read_text()) | {"finalized": True}
        self._save(state)
        return state

    def wait(self, batch_id: str, show: ShowDone, images: int) -> bool:
        """Poll until every request has an answer; False when stopped or --ttl ran out."""
        deadline = time.monotonic() + self.config.ttl
        delay = self.config.poll
        while not self.stop.is_set() and time.monotonic() < deadline:
            status = self._call("GET", f"/{batch_id}")
            total = int(status.get("requestTotal") or 0)
            answered = int(status.get("requestCompleted") or 0) + int(
                status.get("requestFailed") or 0
            )
            if total:
                show(images * answered // total)
            if status.get("status") in ("FAILED", "CANCELLED") or (total and answered >= total):
                return True
            self.stop.wait(delay)
            delay = min(delay * 1.5, 30.0)
        return False

    def answers(self, batch_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"/{batch_id}/requests?offset={len(found)}&limit={self.PAGE}")
            found.extend(page.get("requests") or [])
            if not page.get("hasMore") or not page.get("requests"):
                return found

    def _save(self, state: dict[str, Any]) -> None:
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_file)

    def finish(self) -> None:
        self.state_file.unlink(missing_ok=True)


def record_batch(
    items: Sequence[Item], answers: list[dict[str, Any]], results: ResultsFile
) -> None:
    """Each image's answer from the request whose results name it; the images no completed
    request answered (a request that failed as a whole) get the failed requests' errors."""
    by_item = {item.item_id: item for item in items}
    answered: set[str] = set()
    errors: dict[str, int] = {}  # each distinct error, and how many requests failed with it
    for answer in answers:
        if answer.get("status") != "COMPLETED":
            error = f"{answer.get('error') or answer.get('status')}"[:300]
            errors[error] = errors.get(error, 0) + 1
            continue
        named = [r.get("id") for r in (answer.get("output") or {}).get("results", [])]
        mine = [by_item[i] for i in named if i in by_item and i not in answered]
        answered.update(item.item_id for item in mine)
        record_job(mine, str(answer.get("id")), answer, results)
    rest = [item for item in items if item.item_id not in answered]
    if rest:
        failed = sum(errors.values())
        shown = "; ".join(f"{error} (x{count})" for error, count in list(errors.items())[:3])
        message = (
            f"in one of the batch's {failed} failed requests: {shown}"
            if failed
            else "the batch returned no result for this image"
        )
        record_job(rest, "", {"status": "FAILED", "error": message}, results)


def _run_batch_api(
    endpoint_id: str,
    todo: list[Item],
    results: ResultsFile,
    config: BatchConfig,
    stop: threading.Event,
) -> bool:
    """--api batch: submit (or resume) one batch job, wait for it, record it; True if stopped.

    Ctrl-C or SIGTERM at any point leaves what RunPod holds running (it is cancelled only if it
    was never finalized, by the next run) and still writes the report for what is recorded.
    """
    api = BatchJobs(endpoint_id, config, stop)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    progress: tqdm | None = None
    state: dict[str, Any] | None = None
    try:
        state = api.pending()
        if state is None:
            if config.webhook:
                print("--webhook is not sent with --api batch (batch jobs take inputs only)")
            batches = make_batches(todo, config.batch_size, config.max_payload_bytes)
            state = api.submit(batches)
            print(f"batch {state['batch_id']}: {len(batches)} jobs, {len(todo)} images")
        else:
            print(f"waiting for batch {state['batch_id']} of an earlier run")
            later = len({item.key for item in todo} - set(state["items"]))
            if later:
                print(f"{later} images are not in it: run the same command again once it is done")
        wanted = set(state["items"])
        items = [item for item in read_inputs(config.inputs) if item.key in wanted]
        progress = tqdm(
            total=len(items), unit="img", disable=config.no_progress, dynamic_ncols=True
        )
        if not api.wait(state["batch_id"], ImagesShown(progress, len(items)).to, len(items)):
            raise KeyboardInterrupt
        record_batch(items, api.answers(state["batch_id"]), results)
        api.finish()
        return False
    except KeyboardInterrupt:
        stop.set()
        if state is not None:
            print(f"batch {state['batch_id']} keeps running; run the same command for its results")
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)
        if progress is not None:
            progress.close()


# ---------------------------------------------------------------------------- the run


def run(config: BatchConfig) -> int:
    """The whole run, resumed from OUT/results.jsonl; the exit status (130: interrupted)."""
    config.out.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(config.out / RESULTS)
    items = read_inputs(config.inputs)
    todo = [
        item
        for item in items
        if item.key not in results.done
        or (config.retry_failed and results.done[item.key]["status"] == "failed")
    ]
    print(f"{len(items)} images, {len(items) - len(todo)} already done, {len(todo)} to run")
    interrupted = False
    stop = threading.Event()
    endpoint = config.endpoint
    if config.api == "batch":
        if endpoint is None:
            raise ValueError("the batch-jobs API needs an endpoint")
        if todo or (config.out / BATCH_STATE).exists():
            interrupted = _run_batch_api(endpoint, todo, results, config, stop)
    elif todo:
        runner: EndpointRunner | LocalRunner = (
            LocalRunner() if endpoint is None else EndpointRunner(endpoint, config, stop)
        )
        batches = make_batches(todo, config.batch_size, config.max_payload_bytes)
        interrupted = _run_all(batches, runner, results, config, stop)
    report = write_report(list(results.done.values()), config.out / REPORT, title=config.name)
    failed = sum(1 for row in results.done.values() if row["status"] == "failed")
    print(
        f"wrote {config.out / RESULTS} ({len(results.done)} images, {failed} failed) and {report}"
    )
    return 130 if interrupted else 0


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler stopping us) ends the run like Ctrl-C: cancel, keep what finished."""
    raise KeyboardInterrupt


def _run_all(
    batches: list[list[Item]],
    runner: EndpointRunner | LocalRunner,
    results: ResultsFile,
    config: BatchConfig,
    stop: threading.Event,
) -> bool:
    """Run the batches with bounded concurrency and a progress bar; True if interrupted."""
    total = sum(len(batch) for batch in batches)
    workers = 1 if config.local else max(1, config.concurrency)
    progress = tqdm(total=total, unit="img", disable=config.no_progress, dynamic_ncols=True)
    pending = iter(batches)
    running: set[Future[int]] = set()
    executor = ThreadPoolExecutor(max_workers=workers)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for batch in pending:
            shown = ImagesShown(progress, len(batch))
            running.add(executor.submit(run_batch, batch, runner, results, config, shown))
            if len(running) >= workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
    except KeyboardInterrupt:
        stop.set()
        progress.write("interrupted: cancelling jobs in flight; finished images are kept")
        runner.cancel_all()
        executor.shutdown(wait=False, cancel_futures=True)
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    executor.shutdown()
    return False
