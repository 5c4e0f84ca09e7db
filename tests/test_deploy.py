"""scripts/deploy.py against a fake RunPod REST API on loopback; dry runs contact nothing."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from scripts import deploy

API_KEY = "rp-test-key-0123456789"
SECRETS = {
    "MONGODB_URI": "mongodb+srv://mug:hunter2-mongo@cluster0.example.net/mugpos",
    "R2_SECRET_ACCESS_KEY": "r2-secret-value-42",
    "REDIS_URL": "redis://:redis-pass-77@cache.example.net:6379/0",
}
ENV_FILE = f"""\
# production stores
MONGODB_URI="{SECRETS["MONGODB_URI"]}"
R2_SECRET_ACCESS_KEY='{SECRETS["R2_SECRET_ACCESS_KEY"]}'

export REDIS_URL={SECRETS["REDIS_URL"]}
R2_BUCKET=mug-images
MONGODB_DB = mugs
"""
REQUEST_LINE = re.compile(r"^(GET|POST|PATCH) (\S+)$", re.MULTILINE)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str | None
    body: Any


@dataclass
class FakeRunPod:
    """Answers like REST v1: lists, creates with new ids, PATCHes in place; failures on demand."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, str, int, dict[str, Any], bool]] = field(default_factory=list)

    def fail(
        self, method: str, path: str, status: int, body: dict[str, Any], *, done: bool = False
    ) -> None:
        """The next request to method+path gets this answer (queued, in order); ``done``: the
        request is carried out all the same (a gateway error after the work was done)."""
        self.failures.append((method, path, status, body, done))

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        for index, (f_method, f_path, status, payload, done) in enumerate(self.failures):
            if (f_method, f_path) == (method, path):
                del self.failures[index]
                if done:
                    self.carry_out(method, path, body)
                return status, payload
        return self.carry_out(method, path, body)

    def carry_out(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        kind, _, item_id = path.removeprefix("/v1/").partition("/")
        store = {"templates": self.templates, "endpoints": self.endpoints}.get(kind)
        if store is None:
            return 404, {"error": "not found"}
        if method == "GET" and not item_id:
            return 200, list(store.values())
        if method == "POST" and not item_id:
            new_id = f"{kind[:2]}{len(store) + 1}"
            store[new_id] = body | {"id": new_id}
            return 200, store[new_id]
        if method == "PATCH" and item_id in store:
            store[item_id] |= body
            return 200, store[item_id]
        return 404, {"error": f"{kind} {item_id} not found"}


@pytest.fixture
def api() -> Iterator[FakeRunPod]:
    fake = FakeRunPod()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append(
                Recorded(self.command, parts.path, parts.query, self.headers["Authorization"], body)
            )
            status, payload = fake.answer(self.command, parts.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(ENV_FILE)
    return path


def run(fake: FakeRunPod, *args: str, image: str = "ghcr.io/acme/mugpos:0.4.0") -> int:
    argv = ["--name", "mugpos", "--image", image, "--network-volume-id", "vol-7"]
    return deploy.main([*argv, "--api-url", fake.url, "--retry-wait", "0", *args])


def sent(fake: FakeRunPod) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in fake.requests]


def printed_requests(text: str) -> list[tuple[str, str, Any]]:
    """(method, URL, JSON body or None) for each request a dry run printed."""
    decoder = json.JSONDecoder()
    found = []
    for match in REQUEST_LINE.finditer(text):
        rest = text[match.end() :].lstrip("\n")
        body = decoder.raw_decode(rest)[0] if rest.startswith("{") else None
        found.append((match[1], match[2], body))
    return found


def test_dry_run_prints_both_requests_with_secrets_masked(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dry run sent a request")

    monkeypatch.setattr(requests.Session, "request", no_network)
    argv = ["--name", "mugpos", "--image", "ghcr.io/acme/mugpos:0.4.0", "--dry-run"]
    argv += ["--network-volume-id", "vol-7", "--env-file", str(env_file)]
    argv += ["--env", "LOG_LEVEL=DEBUG"]

    assert deploy.main(argv) == 0

    out, err = capsys.readouterr()
    for secret in SECRETS.values():
        assert secret not in out + err
    requests_ = printed_requests(out)
    assert [(method, url) for method, url, _ in requests_] == [
        ("GET", f"{deploy.API_URL}/templates?includeEndpointBoundTemplates=true"),
        ("POST", f"{deploy.API_URL}/templates"),
        ("GET", f"{deploy.API_URL}/endpoints"),
        ("POST", f"{deploy.API_URL}/endpoints"),
    ]
    template, endpoint = requests_[1][2], requests_[3][2]
    assert template["imageName"] == "ghcr.io/acme/mugpos:0.4.0"
    assert template["isServerless"] is True
    assert template["env"] == {
        "MODEL_DIR": "/runpod-volume/models",
        "MONGODB_URI": "***",
        "R2_SECRET_ACCESS_KEY": "***",
        "REDIS_URL": "***",
        "R2_BUCKET": "mug-images",
        "MONGODB_DB": "mugs",
        "LOG_LEVEL": "DEBUG",
    }
    assert endpoint["flashboot"] is True
    assert endpoint["networkVolumeId"] == "vol-7"
    assert endpoint["gpuTypeIds"][0] == "NVIDIA H200"
    assert endpoint["allowedCudaVersions"] == ["13.0"]
    assert (endpoint["workersMin"], endpoint["workersMax"], endpoint["idleTimeout"]) == (0, 3, 5)
    assert endpoint["executionTimeoutMs"] == 600_000
    assert "https://api.runpod.ai/v2/<endpoint id>/run" in out


def test_first_run_creates_and_second_run_updates(
    api: FakeRunPod,
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)

    assert run(api, "--env-file", str(env_file)) == 0

    assert sent(api) == [
        ("GET", "/v1/templates"),
        ("POST", "/v1/templates"),
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/endpoints"),
    ]
    assert api.requests[0].query == "includeEndpointBoundTemplates=true"
    assert {request.authorization for request in api.requests} == {f"Bearer {API_KEY}"}
    template_id = next(iter(api.templates))
    created = api.requests[3].body
    assert created["templateId"] == template_id
    assert api.templates[template_id]["env"]["MONGODB_URI"] == SECRETS["MONGODB_URI"]
    out, err = capsys.readouterr()
    endpoint_id = next(iter(api.endpoints))
    assert f"https://api.runpod.ai/v2/{endpoint_id}/run" in out
    assert API_KEY not in out + err

    api.requests.clear()
    assert run(api, "--env-file", str(env_file), "--workers-max", "5", image="r/m:0.4.1") == 0

    assert sent(api) == [
        ("GET", "/v1/templates"),
        ("PATCH", f"/v1/templates/{template_id}"),
        ("GET", "/v1/endpoints"),
        ("PATCH", f"/v1/endpoints/{endpoint_id}"),
    ]
    assert "isServerless" not in api.requests[1].body  # not a field of TemplateUpdateInput
    assert len(api.templates) == len(api.endpoints) == 1
    assert api.templates[template_id]["imageName"] == "r/m:0.4.1"
    assert api.endpoints[endpoint_id]["workersMax"] == 5
    assert api.endpoints[endpoint_id]["templateId"] == template_id


def test_an_endpoint_renamed_with_the_flashboot_suffix_is_still_found(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.templates["tp1"] = {"id": "tp1", "name": "mugpos"}
    api.endpoints["en1"] = {"id": "en1", "name": "mugpos -fb", "templateId": "tp1"}

    assert run(api) == 0

    assert ("PATCH", "/v1/endpoints/en1") in sent(api)
    assert len(api.endpoints) == 1


def test_without_flashboot_the_created_endpoint_is_patched_off(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)

    assert run(api, "--no-flashboot") == 0

    assert api.requests[3].body["flashboot"] is False
    assert (api.requests[4].method, api.requests[4].body) == ("PATCH", {"flashboot": False})


def test_rate_limits_and_server_errors_are_retried(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.fail("GET", "/v1/templates", 429, {"message": "slow down"})
    api.fail("POST", "/v1/endpoints", 502, {"message": "bad gateway"})

    assert run(api) == 0

    assert sent(api) == [
        ("GET", "/v1/templates"),
        ("GET", "/v1/templates"),
        ("POST", "/v1/templates"),
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/endpoints"),
        ("GET", "/v1/endpoints"),  # did the failed create happen after all? no
        ("POST", "/v1/endpoints"),
    ]
    assert len(api.endpoints) == 1
    assert "HTTP 429: slow down; trying again" in capsys.readouterr().err


def test_a_create_that_failed_but_happened_is_not_made_twice(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.fail("POST", "/v1/templates", 502, {"message": "bad gateway"}, done=True)
    api.fail("POST", "/v1/endpoints", 504, {"message": "gateway timeout"}, done=True)

    assert run(api) == 0
    assert sent(api) == [
        ("GET", "/v1/templates"),
        ("POST", "/v1/templates"),
        ("GET", "/v1/templates"),  # the template is there: not created again
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/endpoints"),
        ("GET", "/v1/endpoints"),
    ]
    assert api.requests[2].query == "includeEndpointBoundTemplates=true"
    assert (len(api.templates), len(api.endpoints)) == (1, 1)
    assert api.endpoints["en1"]["templateId"] == "te1"

    api.requests.clear()
    assert run(api) == 0  # the next release finds exactly one of each and updates them
    assert sent(api) == [
        ("GET", "/v1/templates"),
        ("PATCH", "/v1/templates/te1"),
        ("GET", "/v1/endpoints"),
        ("PATCH", "/v1/endpoints/en1"),
    ]


def test_a_refused_request_exits_1_with_the_api_message_and_no_secrets(
    api: FakeRunPod,
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    echoed = f"env.R2_SECRET_ACCESS_KEY {SECRETS['R2_SECRET_ACCESS_KEY']!r} is not allowed"
    api.fail("POST", "/v1/templates", 400, {"error": f"imageName: manifest unknown; {echoed}"})

    assert run(api, "--env-file", str(env_file)) == 1

    err = capsys.readouterr().err
    assert "HTTP 400" in err and "imageName: manifest unknown" in err
    assert SECRETS["R2_SECRET_ACCESS_KEY"] not in err and "'***' is not allowed" in err
    assert sent(api) == [("GET", "/v1/templates"), ("POST", "/v1/templates")]  # not retried


def test_a_server_that_keeps_failing_gives_up_with_exit_1(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    for _ in range(5):
        api.fail("GET", "/v1/templates", 503, {"message": "maintenance"})

    assert run(api) == 1

    assert sent(api) == [("GET", "/v1/templates")] * 5
    assert "HTTP 503: maintenance" in capsys.readouterr().err.splitlines()[-1]


def test_an_unreachable_api_is_retried_then_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["--name", "m", "--image", "r/m:1.0", "--api-url", f"http://127.0.0.1:{port}/v1"]

    assert deploy.main([*argv, "--retry-wait", "0"]) == 1

    err = capsys.readouterr().err
    assert err.count("trying again") == 4
    assert API_KEY not in err


def test_a_missing_api_key_stops_before_any_request(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)

    assert run(api) == 1

    assert "RUNPOD_API_KEY is not set" in capsys.readouterr().err
    assert api.requests == []


@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/mugpos:latest", "ghcr.io/acme/mugpos", "localhost:5000/mugpos"]
)
def test_latest_and_untagged_images_are_refused(
    image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        deploy.main(["--name", "mugpos", "--image", image, "--dry-run"])
    assert exit_info.value.code == 2
    assert "versioned tag" in capsys.readouterr().err


@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/mugpos:0.4.0", "localhost:5000/mugpos:1.2", "acme/m@sha256:0a1b2c"]
)
def test_versioned_images_are_accepted(image: str) -> None:
    assert deploy.image_ref(image) == image


def test_gpu_pools_expand_to_rest_gpu_type_ids() -> None:
    assert deploy.gpu_type_ids(["HOPPER_141,ADA_80_PRO", "NVIDIA L40S", "HOPPER_141"]) == [
        "NVIDIA H200",
        "NVIDIA H100 80GB HBM3",
        "NVIDIA H100 PCIe",
        "NVIDIA H100 NVL",
        "NVIDIA L40S",
    ]
    with pytest.raises(deploy.DeployError, match="unknown pool"):
        deploy.gpu_type_ids(["HOPPER_140"])


def test_env_file_errors_name_the_line_but_never_its_value(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("GOOD=1\nR2_SECRET_ACCESS_KEY sekrit-no-equals\n")
    with pytest.raises(deploy.DeployError, match=r"\.env:2: expected KEY=VALUE") as error:
        deploy.read_env_file(path)
    assert "sekrit" not in str(error.value)


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("R2_ACCESS_KEY_ID", "AKIA", True),
        ("GITHUB_TOKEN", "x", True),
        ("MONGODB_URI", "mongodb://localhost:27017", True),
        ("REDIS_URL", "redis://:pw@host:6379/0", True),
        ("REDIS_URL", "redis://host:6379/0", False),
        ("R2_ENDPOINT_URL", "https://acct.r2.cloudflarestorage.com", False),
        ("WEBHOOK", "https://user:pw@hooks.example.net/x", True),
        ("LOG_LEVEL", "INFO", False),
    ],
)
def test_what_counts_as_a_secret(key: str, value: str, secret: bool) -> None:
    assert deploy.is_secret(key, value) is secret


def test_a_pod_template_of_the_same_name_is_left_alone(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.templates["tp1"] = {"id": "tp1", "name": "mugpos", "isServerless": False}

    assert run(api) == 1

    assert "is a Pod template" in capsys.readouterr().err
    assert sent(api) == [("GET", "/v1/templates")]
