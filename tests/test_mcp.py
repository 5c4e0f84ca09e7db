"""The MCP server (SPEC 12): the worker's actions as tools, through the SDK's own client.

Each test starts ``python -m mcp_worker`` as its README command does, over stdio or Streamable
HTTP on loopback, with the worker in the server's process (``--local``) or behind a fake RunPod
endpoint on loopback (``--endpoint``) that runs the jobs with a real worker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, ImageContent, TextContent, Tool

from mcp_worker.server import TOOLS, tool_parameters
from tests.conftest import ASSETS, ROOT
from worker.actions import Worker

RULES = ["keep mugs 15 cm from laptops", "mugs at least 5 cm from the table edge"]
DESK = ASSETS / "desk.jpg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(model_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "DATA_DIR": str(data_dir),
        "WARMUP_IMGSZ": "320",
        **extra,
    }


@asynccontextmanager
async def connect(transport: str, args: list[str], env: dict[str, str]) -> AsyncIterator[Client]:
    """The SDK's client on ``python -m mcp_worker <args>`` over stdio or Streamable HTTP."""
    command = [sys.executable, "-m", "mcp_worker", *args]
    if transport == "stdio":
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=ROOT)
        async with Client(params) as client:
            yield client
        return
    port = free_port()
    process = subprocess.Popen(
        [*command, "--transport", "http", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()[-3000:]  # type: ignore[union-attr]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the server did not listen within 120 s"
            await anyio.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def structured(result: CallToolResult, tool: Tool) -> dict[str, Any]:
    """The call's structured output, valid against the tool's output schema."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert tool.output_schema is not None
    jsonschema.Draft202012Validator(tool.output_schema).validate(result.structured_content)
    text = [part for part in result.content if isinstance(part, TextContent)]
    assert json.loads(text[0].text) == result.structured_content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def the_calls(client: Client) -> dict[str, Any]:
    """What every transport and backend must answer alike: the tools, parse_rules,
    analyze_image on a generated desk picture, health."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {spec.name for spec in TOOLS}
    parsed = structured(
        await client.call_tool("parse_rules", {"rules": RULES}), tools["parse_rules"]
    )
    assert [rule["type"] for rule in parsed["rules"]] == ["min_distance", "edge_margin"]
    analysed = structured(
        await client.call_tool(
            "analyze_image",
            {"image_path": str(DESK), "rules": RULES, "metadata": {"desk": "d-1"}},
        ),
        tools["analyze_image"],
    )
    assert analysed["mugs"], "the generated desk holds mugs"
    assert {rule["type"] for rule in analysed["rules"]} == {"min_distance", "edge_margin"}
    assert "annotated_url" in analysed["artifacts"]
    health = structured(await client.call_tool("health", {}), tools["health"])
    assert health["status"] == "ok"
    bad = await client.call_tool("parse_rules", {"rules": ["keep mugs 15 parsecs from laptops"]})
    assert error_text(bad).startswith("rule_parse_error: rules[0]:"), bad
    return analysed


def test_tools_have_the_job_models_parameters() -> None:
    """A tool's parameters are its job's fields: same names (aliases), same required ones."""
    for spec in TOOLS:
        fields = {
            field.alias or name: field
            for name, field in spec.model.model_fields.items()
            if name != "action" and name not in spec.leave_out
        }
        parameters = {parameter.name: parameter for parameter in tool_parameters(spec)}
        assert set(parameters) == set(fields), spec.name
        for name, parameter in parameters.items():
            required = parameter.default is parameter.empty
            assert required == fields[name].is_required(), (spec.name, name)


def test_http_beyond_loopback_is_refused() -> None:
    """No authentication, and --local reads image_path from this disk: loopback only."""
    completed = subprocess.run(
        [sys.executable, "-m", "mcp_worker", "--local", "--transport", "http", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "refusing to listen on 0.0.0.0" in completed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_local_worker_over_each_transport(
    transport: str, demo_model_dir: Path, tmp_path: Path
) -> None:
    env = server_env(demo_model_dir, tmp_path / "data")

    async def session() -> None:
        async with connect(transport, ["--local"], env) as client:
            analysed = await the_calls(client)
            listed = await client.call_tool("list_analyses", {"filters": {"desk": "d-1"}})
            assert not listed.is_error, listed.content
            assert [row["analysis_id"] for row in listed.structured_content["analyses"]] == [  # type: ignore[index]
                analysed["analysis_id"]
            ]
            with_thumbnail = await client.call_tool(
                "analyze_image",
                {"image_path": str(DESK), "thumbnail": True, "options": {"cache": False}},
            )
            images = [part for part in with_thumbnail.content if isinstance(part, ImageContent)]
            assert len(images) == 1 and images[0].mime_type == "image/jpeg"
            assert len(images[0].data) < 100_000, "a thumbnail, not the picture"
            missing = await client.call_tool("analyze_image", {"image_path": str(tmp_path / "no")})
            assert error_text(missing).startswith("invalid_input: image_path")

    anyio.run(session)


# ----------------------------------------------------------------- a RunPod endpoint on loopback


class FakeEndpoint(ThreadingHTTPServer):
    """RunPod's /v2/<endpoint>/run, /status/<job> and /cancel/<job>, the jobs run by a real worker.

    A job reports IN_QUEUE, then IN_PROGRESS for ``busy_polls`` polls, then its end: COMPLETED
    with the output, or FAILED with the error when the worker answered ``{"error": ...}`` (as
    RunPod reports a handler's error). A job whose metadata holds ``hold`` never ends.
    """

    def __init__(self, worker: Worker, busy_polls: int = 2) -> None:
        super().__init__(("127.0.0.1", 0), FakeEndpointHandler)
        self.worker = worker
        self.busy_polls = busy_polls
        self.jobs: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v2"


class FakeEndpointHandler(BaseHTTPRequestHandler):
    server: FakeEndpoint

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _answer(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        server = self.server
        if self.headers["Authorization"] != "Bearer test-key":
            self._answer({"error": "unauthorized"}, 401)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        if "/cancel/" in self.path:
            job_id = self.path.rsplit("/", 1)[1]
            server.cancelled.append(job_id)
            self._answer({"id": job_id, "status": "CANCELLED"})
            return
        assert self.path.endswith("/run"), self.path
        assert body["policy"]["executionTimeout"] > 0
        with server.lock:
            job_id = f"job-{len(server.jobs) + 1}"
            server.jobs[job_id] = {"input": body["input"], "polls": 0}
        self._answer({"id": job_id, "status": "IN_QUEUE"})

    def do_GET(self) -> None:
        server = self.server
        job_id = self.path.rsplit("/", 1)[1]
        with server.lock:
            job = server.jobs[job_id]
            job["polls"] += 1
            held = "hold" in job["input"].get("metadata", {})
            if held or job["polls"] <= server.busy_polls:
                self._answer({"id": job_id, "status": "IN_PROGRESS"})
                return
            if "output" not in job:
                job["output"] = server.worker.handle({"id": job_id, "input": job["input"]})
        output = job["output"]
        if "error" in output:
            self._answer({"id": job_id, "status": "FAILED", "error": output["error"]})
            return
        self._answer({"id": job_id, "status": "COMPLETED", "output": output})


@pytest.fixture
def endpoint(make_worker) -> Iterator[FakeEndpoint]:
    server = FakeEndpoint(make_worker())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_runpod_endpoint_over_each_transport(
    transport: str, endpoint: FakeEndpoint, demo_model_dir: Path, tmp_path: Path
) -> None:
    env = server_env(
        demo_model_dir,
        tmp_path / "server-data",
        RUNPOD_API_KEY="test-key",
        RUNPOD_ENDPOINT_BASE_URL=endpoint.base_url,
    )
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def session() -> None:
        async with connect(transport, ["--endpoint", "ep-test", "--timeout", "60"], env) as client:
            await the_calls(client)
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            result = await client.call_tool(
                "analyze_image",
                {"image_path": str(DESK), "options": {"cache": False}},
                progress_callback=on_progress,
            )
            structured(result, tools["analyze_image"])
            failed = await client.call_tool("analyze_image", {"image": "bm90IGFuIGltYWdl"})
            assert error_text(failed).startswith("invalid_image:"), failed

    anyio.run(session)
    assert any(message and "in progress" in message for _, _, message in progress), progress
    assert all(job["input"]["action"] for job in endpoint.jobs.values())
    assert not endpoint.cancelled


@pytest.mark.slow
def test_a_job_past_the_timeout_is_cancelled_and_reported(
    endpoint: FakeEndpoint, demo_model_dir: Path, tmp_path: Path
) -> None:
    env = server_env(
        demo_model_dir,
        tmp_path / "server-data",
        RUNPOD_API_KEY="test-key",
        RUNPOD_ENDPOINT_BASE_URL=endpoint.base_url,
    )

    async def session() -> None:
        async with connect("stdio", ["--endpoint", "ep-test", "--timeout", "2"], env) as client:
            started = time.monotonic()
            held = await client.call_tool(
                "analyze_image", {"image_path": str(DESK), "metadata": {"hold": "yes"}}
            )
            assert error_text(held).startswith("timeout: job job-1"), held
            assert time.monotonic() - started < 15

    anyio.run(session)
    assert endpoint.cancelled == ["job-1"]
