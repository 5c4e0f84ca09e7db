"""Violation webhooks (SPEC 11): signed, through their own outbox, at least once, one per analysis,
against a real receiver on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port
from worker import webhooks
from worker.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, sign, verify

SECRET = "s3cret-for-tests"
CRITICAL_RULES = ["at most 0 mugs on the desk (critical)"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("body", "secret", "expected"),
    [
        # openssl: printf '%s' '{"analysis_id":"a1"}' | openssl dgst -sha256 -hmac s3cret
        (
            b'{"analysis_id":"a1"}',
            "s3cret",
            "sha256=fc0ee8c7f727a7587829595eaf32bfa3b165c9c7a8de1559a50b164254ee5e05",
        ),
    ],
)
def test_the_signature_is_the_hmac_sha256_of_the_body(
    body: bytes, secret: str, expected: str
) -> None:
    assert sign(body, secret) == expected
    assert verify(body, expected, secret)
    assert not verify(body + b" ", expected, secret)
    assert not verify(body, expected, secret + "x")


class Receiver:
    """A webhook receiver on loopback: it checks each POST's signature, answers ``fail_first``
    POSTs with 500, can hold a POST until released, and keeps each delivery id once."""

    def __init__(self, port: int, fail_first: int = 0, hold: bool = False) -> None:
        self.port = port
        self.posts: list[dict[str, Any]] = []
        self.processed: dict[str, dict[str, Any]] = {}  # by delivery id: what it acted on
        self.fail_first = fail_first
        self.hold = threading.Event()
        if not hold:
            self.hold.set()
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                post = {
                    "path": self.path,
                    "body": body,
                    "signature": self.headers.get(SIGNATURE_HEADER, ""),
                    "delivery": self.headers.get(DELIVERY_HEADER, ""),
                    "content_type": self.headers.get("Content-Type"),
                    "verified": verify(body, self.headers.get(SIGNATURE_HEADER, ""), SECRET),
                }
                receiver.posts.append(post)
                receiver.received.set()
                receiver.hold.wait(30)
                if len(receiver.posts) <= receiver.fail_first or not post["verified"]:
                    self.send_response(500 if post["verified"] else 401)
                    self.end_headers()
                    return
                receiver.processed.setdefault(post["delivery"], json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "FIRST_RETRY_S", 0.05)
    monkeypatch.setattr(webhooks, "MAX_RETRY_S", 0.2)


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def webhook_worker(make_worker: Any) -> Iterator[Callable[..., Any]]:
    built: list[Any] = []

    def build(url: str, **overrides: Any) -> Any:
        overrides.setdefault("allow_private_urls", True)  # the receiver is on loopback
        worker = make_worker(violation_webhook_url=url, webhook_secret=SECRET, **overrides)
        built.append(worker)
        return worker

    yield build
    for worker in built:
        worker.webhooks.close()


def analyze(worker: Any, image: str, rules: list[str], job_id: str) -> dict[str, Any]:
    payload = {"image": image, "rules": rules, "metadata": {"desk": "A7"}}
    output: dict[str, Any] = worker.handle({"id": job_id, "input": payload})
    assert "error" not in output, output
    return output


def test_a_failed_critical_rule_delivers_one_signed_webhook(
    webhook_worker: Any, desk_b64: str, fast_retries: None
) -> None:
    receiver = Receiver(free_port())
    try:
        worker = webhook_worker(receiver.url)
        result = analyze(worker, desk_b64, CRITICAL_RULES, "job-critical")
        wait_for(lambda: worker.webhooks.outbox.pending() == 0 and receiver.processed)
        [post] = receiver.posts
        assert post["verified"] and post["content_type"] == "application/json"
        assert post["delivery"] == "job-critical"
        body = json.loads(post["body"])
        assert body["event"] == "analysis.violation"
        assert body["analysis_id"] == "job-critical" and body["metadata"] == {"desk": "A7"}
        [failed] = body["failed_rules"]
        assert failed["severity"] == "critical" and failed["message"].startswith("1 mug found")
        assert body["annotated_url"] == result["artifacts"]["annotated_url"]
        # a passing analysis sends nothing
        analyze(worker, desk_b64, ["at most 5 mugs on the desk"], "job-passing")
        time.sleep(0.3)
        assert len(receiver.posts) == 1
        assert worker.handle({"input": {"action": "health"}})["webhooks"]["delivered"] == 1
    finally:
        receiver.stop()


def test_a_receiver_answering_500_gets_it_again_until_it_takes_it(
    webhook_worker: Any, desk_b64: str, fast_retries: None
) -> None:
    receiver = Receiver(free_port(), fail_first=2)
    try:
        worker = webhook_worker(receiver.url)
        analyze(worker, desk_b64, CRITICAL_RULES, "job-retried")
        wait_for(lambda: bool(receiver.processed))
        assert [post["delivery"] for post in receiver.posts] == ["job-retried"] * 3
        assert all(post["verified"] for post in receiver.posts)
        assert list(receiver.processed) == ["job-retried"]
        wait_for(lambda: worker.webhooks.outbox.pending() == 0)
    finally:
        receiver.stop()


def test_a_receiver_down_for_a_while_gets_each_webhook_later_exactly_once(
    webhook_worker: Any, desk_b64: str, fast_retries: None
) -> None:
    port = free_port()
    worker = webhook_worker(f"http://127.0.0.1:{port}/hook")
    started = time.perf_counter()
    for number in range(3):
        analyze(worker, desk_b64, CRITICAL_RULES, f"job-{number}")
    assert time.perf_counter() - started < 30  # the jobs did not wait for the receiver
    time.sleep(1.0)  # refused connections meanwhile: the entries wait, none is set aside
    assert worker.webhooks.outbox.pending() == 3
    assert worker.webhooks.outbox.dead_entries() == []
    receiver = Receiver(port)
    try:
        wait_for(lambda: len(receiver.processed) == 3 and worker.webhooks.outbox.pending() == 0)
        assert [post["delivery"] for post in receiver.posts] == ["job-0", "job-1", "job-2"]
    finally:
        receiver.stop()


def test_the_url_is_checked_like_image_url(
    webhook_worker: Any, desk_b64: str, fast_retries: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback without ALLOW_PRIVATE_URLS: never contacted, set aside after the attempts."""
    monkeypatch.setattr(webhooks, "WEBHOOK_MAX_ATTEMPTS", 2)
    receiver = Receiver(free_port())
    try:
        worker = webhook_worker(receiver.url, allow_private_urls=False)
        analyze(worker, desk_b64, CRITICAL_RULES, "job-private")
        wait_for(lambda: worker.webhooks.outbox.dead_entries() != [])
        [dead] = worker.webhooks.outbox.dead_entries()
        assert dead["key"] == "job-private" and "refused it 2 times" in dead["reason"]
        assert receiver.posts == []
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIOLATION_WEBHOOK_URL": "http://example.com/h"}, "WEBHOOK_SECRET is required"),
        ({"VIOLATION_WEBHOOK_URL": "ftp://example.com/h", "WEBHOOK_SECRET": "x"}, "http or https"),
    ],
)
def test_webhook_settings_are_checked_at_start(
    env: dict[str, str], message: str, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.settings import ConfigError, load_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


CHILD = """
import base64, json, sys, time
from worker.bootstrap import build_worker
worker = build_worker()
desk = base64.b64encode(open("tests/assets/desk.jpg", "rb").read()).decode()
job = {"image": desk, "rules": ["at most 0 mugs on the desk (critical)"]}
print(json.dumps(worker.handle({"id": "job-restart", "input": job})["rules"]), flush=True)
time.sleep(120)
"""


def test_a_restart_mid_delivery_sends_the_same_webhook_again_with_its_key(
    make_settings: Any, make_worker: Any, demo_model_dir: Path, tmp_path: Path, fast_retries: None
) -> None:
    """The worker is killed while the receiver holds its POST (taken, not yet answered): the
    next start delivers the queued webhook again, under the same delivery id, and the receiver
    acts on it once. Nothing is lost; nothing is acted on twice."""
    receiver = Receiver(free_port(), hold=True)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "MODEL_DIR": str(demo_model_dir),
        "DATA_DIR": str(data),
        "WARMUP_IMGSZ": "320",
        "VIOLATION_WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "ALLOW_PRIVATE_URLS": "true",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert json.loads(child.stdout.readline())[0]["status"] == "fail"
        assert receiver.received.wait(60)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    receiver.hold.set()  # the killed worker never hears this answer
    try:
        restarted = make_worker(
            data_dir=data,
            violation_webhook_url=receiver.url,
            webhook_secret=SECRET,
            allow_private_urls=True,
        )
        try:
            wait_for(lambda: restarted.webhooks.outbox.pending() == 0)
        finally:
            restarted.webhooks.close()
        assert [post["delivery"] for post in receiver.posts] == ["job-restart"] * 2
        assert all(post["verified"] for post in receiver.posts)
        assert receiver.posts[0]["body"] == receiver.posts[1]["body"]
        assert list(receiver.processed) == ["job-restart"]
    finally:
        receiver.stop()
