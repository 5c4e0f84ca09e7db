"""The deployer (client/deploy.py, run as scripts/deploy.py) against a fake RunPod REST API v2 on
loopback; dry runs contact nothing.

The fake checks every request body against RunPod's published v2 schema (the parts kept in
tests/schemas/runpod-rest-v2.json) and refuses what it refuses: an unknown field is a 422.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from client import deploy
from scripts import deploy as deploy_cli
from tests.conftest import ROOT

README = ROOT / "README.md"

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

SCHEMA_URI = "urn:runpod-rest-v2"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "runpod-rest-v2.json").read_text())
REGISTRY = Registry().with_resource(
    SCHEMA_URI, Resource(contents=SCHEMA, specification=DRAFT202012)
)
# the request body schema of each operation the script may send (openapi.json's requestBody)
BODY_SCHEMAS = {
    ("POST", "templates"): "CreateTemplateRequest",
    ("PATCH", "templates"): "UpdateTemplateRequest",
    ("POST", "serverless"): "CreateEndpointRequest",
    ("PATCH", "serverless"): "UpdateEndpointRequest",
}
LIST_SCHEMAS = {"templates": "ListTemplatesResponse", "serverless": "ListEndpointsResponse"}


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{SCHEMA_URI}#/components/schemas/{name}"}, registry=REGISTRY
    )


def problem(status: int, detail: str, errors: list[str] | None = None) -> dict[str, Any]:
    """An error body as v2 sends it (RFC 9457 problem+json)."""
    body: dict[str, Any] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return body if errors is None else body | {"errors": errors}


def schema_errors(name: str, body: Any) -> list[str]:
    """What v2 would list in a 422's ``errors`` for this body."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
        for e in validator(name).iter_errors(body)
    ]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str | None
    body: Any


@dataclass
class FakeRunPod:
    """Answers like REST v2: wrapped lists, 201 creates with new ids, PATCHes in place, 422 for a
    body its schema refuses; failures on demand."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, str, int, dict[str, Any], bool, str | None]] = field(
        default_factory=list
    )
    refused: list[list[str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # extra headers of the next answer

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        body: dict[str, Any],
        *,
        done: bool = False,
        retry_after: str | None = None,
    ) -> None:
        """The next request to method+path gets this answer (queued, in order); ``done``: the
        request is carried out all the same (a gateway error after the work was done)."""
        self.failures.append((method, path, status, body, done, retry_after))

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        kind = path.removeprefix("/v2/").partition("/")[0]
        schema = BODY_SCHEMAS.get((method, kind))
        if schema is not None:
            errors = schema_errors(schema, body)
            if errors:
                self.refused.append(errors)
                return 422, problem(422, "validation failed", errors)
        rule = self.cross_field_rule(method, kind, path, body)
        if rule is not None:
            return 400, problem(400, rule)
        for index, (f_method, f_path, status, payload, done, wait) in enumerate(self.failures):
            if (f_method, f_path) == (method, path):
                del self.failures[index]
                if done:
                    self.carry_out(method, path, body)
                self.headers = {} if wait is None else {"Retry-After": wait}
                return status, payload
        return self.carry_out(method, path, body)

    def cross_field_rule(self, method: str, kind: str, path: str, body: Any) -> str | None:
        """The rules v2 checks beyond the schema (a 400), as its descriptions state them."""
        if kind != "serverless" or method not in ("POST", "PATCH"):
            return None
        endpoint = body
        if method == "PATCH":
            stored = self.endpoints.get(path.rsplit("/", 1)[1], {})
            # "setting one does not clear the other": the gpu block merges per field
            endpoint = stored | body | {"gpu": stored.get("gpu", {}) | body.get("gpu", {})}
        elif ("gpu" in body) == ("cpu" in body):
            return "give exactly one of gpu or cpu"
        gpu = endpoint.get("gpu") or {}
        if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
            return "gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive"
        scaling = endpoint.get("scaling") or {}
        if scaling.get("type") == "REQUEST_COUNT" and "idleTimeout" in body.get("workers", {}):
            return "workers.idleTimeout is not accepted when scaling by request count"
        return None

    def carry_out(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        kind, _, item_id = path.removeprefix("/v2/").partition("/")
        store = {"templates": self.templates, "serverless": self.endpoints}.get(kind)
        if store is None:
            return 404, problem(404, f"no route {path}")
        if method == "GET" and not item_id:
            answer = {LIST_KEYS[kind]: [shown(kind, item) for item in store.values()]}
            assert not schema_errors(LIST_SCHEMAS[kind], answer)
            return 200, answer
        if method == "POST" and not item_id:
            new_id = f"{kind[:2]}{len(store) + 1}"
            store[new_id] = body | {"id": new_id}
            return 201, shown(kind, store[new_id])
        if method == "PATCH" and item_id in store:
            gpu = store[item_id].get("gpu", {}) | body.get("gpu", {})
            store[item_id] |= body | ({"gpu": gpu} if gpu else {})
            return 200, shown(kind, store[item_id])
        return 404, problem(404, f"{kind} {item_id} not found")


LIST_KEYS = {"templates": "templates", "serverless": "endpoints"}
# what v2 fills in for fields a body leaves out (the Template and Endpoint response schemas)
TEMPLATE_DEFAULTS: dict[str, Any] = {
    "args": "",
    "disk": 20,
    "mounts": {},
    "ports": [],
    "env": {},
    "registry": None,
    "serverless": False,
    "public": False,
    "category": "NVIDIA",
    "startSsh": True,
    "startJupyter": True,
    "allowedCudaVersions": [],
}
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "workers": {"min": 0, "max": 3, "idleTimeout": 10},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "dataCenterIds": [],
    "networkVolumes": [],
    "timeout": 300000,
    "flashboot": "OFF",
    "createdAt": "2026-12-01T00:00:00Z",
}


def shown(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """An item as v2 answers with it: every field, and no templateId on an endpoint."""
    if kind == "templates":
        return TEMPLATE_DEFAULTS | item
    endpoint = {k: v for k, v in (ENDPOINT_DEFAULTS | item).items() if k != "templateId"}
    if "gpu" in endpoint:
        endpoint["gpu"] = {"allowedCudaVersions": [], "minCudaVersion": None} | endpoint["gpu"]
    return endpoint


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
            for name, value in fake.headers.items():
                self.send_header(name, value)
            fake.headers = {}
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
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v2"
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
    return deploy_cli.main([*argv, "--api-url", fake.url, "--retry-wait", "0", *args])


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


def test_dry_run_prints_v2_requests_with_secrets_masked(
    env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dry run sent a request")

    monkeypatch.setattr(requests.Session, "request", no_network)
    argv = ["--name", "mugpos", "--image", "ghcr.io/acme/mug-positioning-worker:0.1.0"]
    argv += ["--network-volume-id", "vol123", "--dry-run", "--env-file", str(env_file)]
    argv += ["--env", "LOG_LEVEL=DEBUG"]

    assert deploy_cli.main(argv) == 0

    out, err = capsys.readouterr()
    for secret in SECRETS.values():
        assert secret not in out + err
    requests_ = printed_requests(out)
    assert [(method, url) for method, url, _ in requests_] == [
        ("GET", "https://api.runpod.io/v2/templates"),
        ("POST", "https://api.runpod.io/v2/templates"),
        ("GET", "https://api.runpod.io/v2/serverless"),
        ("POST", "https://api.runpod.io/v2/serverless"),
    ]
    template, endpoint = requests_[1][2], requests_[3][2]
    assert schema_errors("CreateTemplateRequest", template) == []
    assert schema_errors("CreateEndpointRequest", endpoint) == []
    assert template["image"] == "ghcr.io/acme/mug-positioning-worker:0.1.0"
    assert template["serverless"] is True
    assert template["env"] == {
        "MODEL_DIR": "/runpod-volume/models",
        "MONGODB_URI": "***",
        "R2_SECRET_ACCESS_KEY": "***",
        "REDIS_URL": "***",
        "R2_BUCKET": "mug-images",
        "MONGODB_DB": "mugs",
        "LOG_LEVEL": "DEBUG",
    }
    assert endpoint["flashboot"] == "FLASHBOOT"  # v2's default is OFF: always sent
    assert endpoint["networkVolumes"] == ["vol123"]
    assert endpoint["type"] == "QUEUE"
    assert endpoint["gpu"] == {
        "pools": ["HOPPER_141", "ADA_80_PRO"],
        "count": 1,
        "minCudaVersion": "13.0",
        "allowedCudaVersions": [],
    }
    assert endpoint["workers"] == {"min": 0, "max": 3, "idleTimeout": 5}
    assert endpoint["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 4.0}
    assert endpoint["timeout"] == 600_000
    assert "https://api.runpod.ai/v2/<endpoint id>/run" in out


def test_the_readme_dry_run_runs_as_printed() -> None:
    """Acceptance 1 of #13, the README's own command: v2 requests, FlashBoot on, the volume."""
    text = README.read_text()
    lines = [
        line
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
        for line in block.replace("\\\n", " ").splitlines()
        if "scripts.deploy" in line and "--dry-run" in line
    ]
    assert lines, "the README gives no dry run"
    words = shlex.split(lines[0].split("#")[0])
    assert words[:3] == ["python", "-m", "scripts.deploy"]
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    done = subprocess.run(
        [sys.executable, *words[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    requests_ = printed_requests(done.stdout)
    assert all(url.startswith("https://api.runpod.io/v2/") for _, url, _ in requests_)
    endpoint = requests_[3][2]
    assert endpoint["flashboot"] == "FLASHBOOT" and endpoint["networkVolumes"] == ["vol123"]
    assert "MODEL_DIR" in requests_[1][2]["env"] and "Authorization" not in done.stdout


def test_without_a_volume_the_image_keeps_its_own_model_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A baked image or RunPod's model cache: no MODEL_DIR pointing at a volume that is not there."""
    argv = ["--name", "mugpos", "--image", "r/m:1.0", "--dry-run"]
    assert deploy_cli.main(argv) == 0
    template, endpoint = (body for _, _, body in printed_requests(capsys.readouterr().out) if body)
    assert template["env"] == {}
    assert endpoint["networkVolumes"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--flashboot", "off"], {"flashboot": "OFF"}),
        (["--flashboot", "priority"], {"flashboot": "PRIORITY_FLASHBOOT"}),
        (
            ["--scaling", "requests:2"],
            {
                "scaling": {"type": "REQUEST_COUNT", "requestCount": 2},
                "workers": {"min": 0, "max": 3},  # v2 takes no idle timeout with it
            },
        ),
        (["--scaling", "delay:0.5"], {"scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.5}}),
        (
            ["--network-volume-id", "vol-eu", "--network-volume-id", "vol-us"],
            {"networkVolumes": ["vol-eu", "vol-us"]},
        ),
        (
            ["--gpu", "ADA_24", "--gpu", "AMPERE_24,ADA_24"],
            {
                "gpu": {
                    "pools": ["ADA_24", "AMPERE_24"],
                    "count": 1,
                    "minCudaVersion": "13.0",
                    "allowedCudaVersions": [],
                }
            },
        ),
    ],
)
def test_endpoint_settings_as_v2_nests_them(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: dict[str, Any]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    argv = ["--name", "mugpos", "--image", "r/m:1.0", "--api-url", api.url, *args]

    assert deploy_cli.main(argv) == 0

    assert api.refused == []
    (endpoint,) = api.endpoints.values()
    assert {key: endpoint[key] for key in expected} == expected


@pytest.mark.parametrize("scaling", ["delay:0.2", "requests:0", "requests:1.5", "queue:4", "x"])
def test_scaling_out_of_v2s_range_is_refused(
    scaling: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        deploy_cli.main(["--name", "m", "--image", "r/m:1.0", "--dry-run", "--scaling", scaling])
    assert exit_info.value.code == 2
    assert "expected delay:<seconds" in capsys.readouterr().err


def test_first_run_creates_and_second_run_updates(
    api: FakeRunPod,
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)

    assert run(api, "--env-file", str(env_file)) == 0

    assert sent(api) == [
        ("GET", "/v2/templates"),
        ("POST", "/v2/templates"),
        ("GET", "/v2/serverless"),
        ("POST", "/v2/serverless"),
    ]
    assert api.refused == []
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
        ("GET", "/v2/templates"),
        ("PATCH", f"/v2/templates/{template_id}"),
        ("GET", "/v2/serverless"),
        ("PATCH", f"/v2/serverless/{endpoint_id}"),
    ]
    assert api.refused == []
    assert len(api.templates) == len(api.endpoints) == 1
    assert api.templates[template_id]["image"] == "r/m:0.4.1"
    # a template is a snapshot: the endpoint takes the new image only when it is applied again
    assert api.requests[3].body["templateId"] == template_id
    assert "type" not in api.requests[3].body  # not a field of UpdateEndpointRequest
    assert api.endpoints[endpoint_id]["workers"]["max"] == 5


def test_an_endpoint_renamed_with_the_flashboot_suffix_is_still_found(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.templates["tp1"] = {"id": "tp1", "name": "mugpos", "image": "r/m:0.1", "serverless": True}
    api.endpoints["en1"] = {"id": "en1", "name": "mugpos -fb"}

    assert run(api) == 0

    assert ("PATCH", "/v2/serverless/en1") in sent(api)
    assert len(api.endpoints) == 1


def test_an_endpoint_an_older_deploy_pinned_to_cuda_13_0_takes_the_floor(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 deploys set allowedCudaVersions ["13.0"]; v2 refuses a set beside a floor unless the
    set is cleared in the same request."""
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.templates["te1"] = {"id": "te1", "name": "mugpos", "image": "r/m:0.1", "serverless": True}
    api.endpoints["se1"] = {
        "id": "se1",
        "name": "mugpos",
        "gpu": {"pools": ["HOPPER_141"], "count": 1, "allowedCudaVersions": ["13.0"]},
    }

    assert run(api) == 0

    assert api.refused == [] and ("PATCH", "/v2/serverless/se1") in sent(api)
    gpu = api.endpoints["se1"]["gpu"]
    assert (gpu["allowedCudaVersions"], gpu["minCudaVersion"]) == ([], "13.0")


def test_an_idle_timeout_with_request_count_scaling_is_refused_before_sending(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--name", "m", "--image", "r/m:1.0", "--dry-run", "--scaling", "requests:2"]
    with pytest.raises(SystemExit) as exit_info:
        deploy_cli.main([*argv, "--idle-timeout", "30"])
    assert exit_info.value.code == 2
    assert "--idle-timeout does not go with --scaling requests" in capsys.readouterr().err


def test_a_rate_limit_waits_as_long_as_retry_after_asks(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.fail("GET", "/v2/templates", 429, problem(429, "slow down"), retry_after="1")

    assert run(api) == 0

    assert "HTTP 429: slow down; trying again in 1.0 s" in capsys.readouterr().err


def test_a_body_v2_does_not_know_is_refused_by_the_fake_as_by_runpod(api: FakeRunPod) -> None:
    """The fake is as strict as v2: a v1-style body gets a 422 naming the fields."""
    rest = deploy.RestApi(api.url, API_KEY, retry_wait=0)
    with pytest.raises(deploy.DeployError, match="HTTP 422") as error:
        rest.call("POST", "/templates", {"name": "m", "imageName": "r/m:1.0", "isServerless": True})
    assert "imageName" in str(error.value)
    assert sent(api) == [("POST", "/v2/templates")]  # a 422 is never retried


def test_rate_limits_and_server_errors_are_retried(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.fail(
        "GET",
        "/v2/templates",
        429,
        problem(429, "slow down"),
    )
    api.fail(
        "POST",
        "/v2/serverless",
        502,
        problem(502, "bad gateway"),
    )

    assert run(api) == 0

    assert sent(api) == [
        ("GET", "/v2/templates"),
        ("GET", "/v2/templates"),
        ("POST", "/v2/templates"),
        ("GET", "/v2/serverless"),
        ("POST", "/v2/serverless"),
        ("GET", "/v2/serverless"),  # did the failed create happen after all? no
        ("POST", "/v2/serverless"),
    ]
    assert len(api.endpoints) == 1
    assert "HTTP 429: slow down; trying again" in capsys.readouterr().err


def test_a_create_that_failed_but_happened_is_not_made_twice(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    api.fail(
        "POST",
        "/v2/templates",
        502,
        problem(502, "bad gateway"),
        done=True,
    )
    api.fail(
        "POST",
        "/v2/serverless",
        504,
        problem(504, "gateway timeout"),
        done=True,
    )

    assert run(api) == 0
    assert sent(api) == [
        ("GET", "/v2/templates"),
        ("POST", "/v2/templates"),
        ("GET", "/v2/templates"),  # the template is there: not created again
        ("GET", "/v2/serverless"),
        ("POST", "/v2/serverless"),
        ("GET", "/v2/serverless"),
    ]
    assert (len(api.templates), len(api.endpoints)) == (1, 1)
    assert api.requests[4].body["templateId"] == "te1"

    api.requests.clear()
    assert run(api) == 0  # the next release finds exactly one of each and updates them
    assert sent(api) == [
        ("GET", "/v2/templates"),
        ("PATCH", "/v2/templates/te1"),
        ("GET", "/v2/serverless"),
        ("PATCH", "/v2/serverless/se1"),
    ]


def test_a_refused_request_exits_1_with_the_api_message_and_no_secrets(
    api: FakeRunPod,
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    echoed = f"env.R2_SECRET_ACCESS_KEY {SECRETS['R2_SECRET_ACCESS_KEY']!r} is not allowed"
    api.fail("POST", "/v2/templates", 400, problem(400, "image: manifest unknown", [echoed]))

    assert run(api, "--env-file", str(env_file)) == 1

    err = capsys.readouterr().err
    assert "HTTP 400" in err and "image: manifest unknown" in err
    assert SECRETS["R2_SECRET_ACCESS_KEY"] not in err and "'***' is not allowed" in err
    assert sent(api) == [("GET", "/v2/templates"), ("POST", "/v2/templates")]  # not retried


def test_a_server_that_keeps_failing_gives_up_with_exit_1(
    api: FakeRunPod, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    for _ in range(5):
        api.fail(
            "GET",
            "/v2/templates",
            503,
            problem(503, "maintenance"),
        )

    assert run(api) == 1

    assert sent(api) == [("GET", "/v2/templates")] * 5
    assert "HTTP 503: maintenance" in capsys.readouterr().err.splitlines()[-1]


def test_an_unreachable_api_is_retried_then_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["--name", "m", "--image", "r/m:1.0", "--api-url", f"http://127.0.0.1:{port}/v2"]

    assert deploy_cli.main([*argv, "--retry-wait", "0"]) == 1

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
        deploy_cli.main(["--name", "mugpos", "--image", image, "--dry-run"])
    assert exit_info.value.code == 2
    assert "versioned tag" in capsys.readouterr().err


@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/mugpos:0.4.0", "localhost:5000/mugpos:1.2", "acme/m@sha256:0a1b2c"]
)
def test_versioned_images_are_accepted(image: str) -> None:
    assert deploy.image_ref(image) == image


def test_gpu_pools_are_passed_as_v2_takes_them() -> None:
    assert deploy.gpu_pools(["HOPPER_141,ADA_80_PRO", "BLACKWELL_180", "HOPPER_141"]) == [
        "HOPPER_141",
        "ADA_80_PRO",
        "BLACKWELL_180",
    ]
    with pytest.raises(deploy.DeployError, match="pool ids such as HOPPER_141"):
        deploy.gpu_pools(["NVIDIA H200"])


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
    api.templates["tp1"] = {"id": "tp1", "name": "mugpos", "image": "r/p:1", "serverless": False}

    assert run(api) == 1

    assert "is a Pod template" in capsys.readouterr().err
    assert sent(api) == [("GET", "/v2/templates")]


# --- the README's runpodctl commands, against runpodctl's own flags --------------------------------

RUNPODCTL = json.loads((Path(__file__).parent / "schemas" / "runpodctl-flags.json").read_text())


def readme_runpodctl_commands() -> list[list[str]]:
    """Every runpodctl command line of the README: in bash blocks (continuations joined) and in
    inline code; each as its words after ``runpodctl``."""
    text = README.read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        lines += block.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`(runpodctl [^`]+)`", text)
    commands = []
    for line in lines:
        for part in re.findall(r"runpodctl ([^|)#]+)", line):
            commands.append(shlex.split(part))
    return commands


def test_the_readme_runpodctl_commands_use_only_flags_runpodctl_has() -> None:
    commands = readme_runpodctl_commands()
    seen = set()
    for words in commands:
        if words[0] not in ("serverless", "sls", "template"):
            continue  # doctor, version: no flags of ours
        group = RUNPODCTL["aliases"].get(words[0], words[0])
        verb = RUNPODCTL["aliases"].get(words[1], words[1])
        known = RUNPODCTL["commands"][f"{group} {verb}"]
        seen.add(f"{group} {verb}")
        for word in words[2:]:
            if word.startswith("--"):
                assert word[2:].split("=")[0] in known, f"runpodctl {group} {verb} has no {word}"
    assert {"template create", "serverless create", "serverless update"} <= seen
    assert {"serverless delete", "template delete"} <= seen


def test_the_readme_runpodctl_deploy_matches_deploy_py() -> None:
    """The same template and endpoint as scripts/deploy.py makes with its defaults."""

    def options(words: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for index, word in enumerate(words):
            if word.startswith("--"):
                following = words[index + 1] if index + 1 < len(words) else "--"
                found[word[2:]] = None if following.startswith("--") else following
        return found

    commands = readme_runpodctl_commands()
    template = options(next(w for w in commands if w[:2] == ["template", "create"]))
    endpoint = options(next(w for w in commands if w[:2] == ["serverless", "create"]))
    defaults = deploy_cli._parser().parse_args(["--name", "mugpos", "--image", "r/m:1.0"])
    assert "serverless" in template
    assert template["container-disk-in-gb"] == str(deploy.CONTAINER_DISK_GB)
    assert json.loads(template["env"] or "") == {"MODEL_DIR": "/runpod-volume/models"}
    assert endpoint["gpu-id"] == deploy.DEFAULT_GPUS[0]
    assert endpoint["min-cuda-version"] == deploy.MIN_CUDA_VERSION
    assert endpoint["workers-max"] == str(defaults.workers_max)
    assert endpoint["idle-timeout"] == str(deploy.IDLE_TIMEOUT_S)
    assert endpoint["execution-timeout"] == str(defaults.execution_timeout)
    assert "flash-boot" in endpoint and "network-volume-id" in endpoint
    assert endpoint["model-reference"] == "https://huggingface.co/openai/clip-vit-base-patch32:main"
