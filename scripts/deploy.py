"""Create or update this worker's RunPod template and serverless endpoint (REST API v1).

    export RUNPOD_API_KEY=...
    python scripts/deploy.py --name mugpos --image ghcr.io/acme/mugpos:0.4.0 \\
        --network-volume-id agv6w2qcg7 --env-file .env
    python scripts/deploy.py --name mugpos --image ghcr.io/acme/mugpos:0.4.0 --dry-run

A second run with the same --name updates the template and the endpoint in place (PATCH), so a
release is: push a new image tag, run this again with the same --env-file (the template's env is
replaced by what each run gives). --dry-run prints the requests (secrets masked) and contacts
nothing, so it needs no API key.

Documented (runpod/docs api-reference/openapi.json, hub/publishing-guide, references/gpu-types):
- base https://rest.runpod.io/v1, ``Authorization: Bearer <key>``; GET/POST /templates and
  /endpoints, PATCH /templates/{id} and /endpoints/{id}; responses carry ``id``;
- GET /templates leaves out templates bound to an endpoint unless includeEndpointBoundTemplates;
- TemplateCreateInput: name, imageName, isServerless, containerDiskInGb, env (an object); the
  update input has no isServerless;
- EndpointCreateInput: templateId, name, gpuTypeIds, gpuCount, networkVolumeId, workersMin,
  workersMax, idleTimeout (1-3600 s), executionTimeoutMs, flashboot, allowedCudaVersions;
- gpuTypeIds takes GPU type names ("NVIDIA H200"); pool ids (HOPPER_141) are for hub.json and
  GraphQL, so pools given here are expanded with the docs' pool table.
Inferred: which exact type names make up each pool; error bodies carry "message" or "error";
endpoint names may come back with " -fb" appended (the old FlashBoot marker, runpodctl#261), so
that suffix still matches; REST create ignored flashboot=false (runpodctl before #284), so a
PATCH follows a create without FlashBoot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.settings import RUNPOD_VOLUME_MODELS  # noqa: E402

API_URL = "https://rest.runpod.io/v1"
JOBS_URL = "https://api.runpod.ai/v2/{endpoint_id}/run"
# The image's torch is a CUDA 13.0 build: hosts whose driver offers less cannot run it.
ALLOWED_CUDA_VERSIONS = ["13.0"]
CONTAINER_DISK_GB = 30
# GET /templates leaves out the templates bound to an endpoint unless asked for them
LIST_PARAMS: dict[str, dict[str, str]] = {"/templates": {"includeEndpointBoundTemplates": "true"}}
DEFAULT_GPUS = ["HOPPER_141", "ADA_80_PRO"]
GPU_POOLS: dict[str, list[str]] = {
    "AMPERE_16": [
        "NVIDIA RTX A4000",
        "NVIDIA RTX A4500",
        "NVIDIA RTX 4000 Ada Generation",
        "NVIDIA RTX 2000 Ada Generation",
    ],
    "AMPERE_24": ["NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"],
    "ADA_24": ["NVIDIA GeForce RTX 4090"],
    "AMPERE_48": ["NVIDIA RTX A6000", "NVIDIA A40"],
    "ADA_48_PRO": ["NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"],
    "AMPERE_80": ["NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"],
    "ADA_80_PRO": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL"],
    "HOPPER_141": ["NVIDIA H200"],
}
SECRET_MARKERS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "URI")
MASK = "***"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FLASHBOOT_SUFFIX = re.compile(r"\s*-fb$")


class DeployError(Exception):
    """Something the user has to fix (or the API refused): printed, exit status 1."""


class TransientError(Exception):
    """HTTP 429 or 5xx: the same request may well succeed a moment later."""


# --- arguments ----------------------------------------------------------------------------------


def image_ref(image: str) -> str:
    """Versioned tags or digests only: workers cache images, so a re-pushed tag can run old code."""
    name, _, digest = image.partition("@")
    if digest:
        if not digest.startswith("sha256:"):
            raise argparse.ArgumentTypeError(f"{image!r}: a digest looks like @sha256:<hex>")
        return image
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        raise argparse.ArgumentTypeError(
            f"{image!r}: give a versioned tag such as :0.4.0 or a @sha256 digest, not "
            f"{':latest' if tag else 'an untagged image'} (workers keep running a cached image)"
        )
    return image


def gpu_type_ids(values: Iterable[str]) -> list[str]:
    """Pool ids expanded to the REST API's GPU type names, in priority order, each once."""
    ids: list[str] = []
    for value in (part.strip() for item in values for part in item.split(",")):
        if value in GPU_POOLS:
            ids.extend(GPU_POOLS[value])
        elif re.fullmatch(r"[A-Z0-9_]+", value):
            raise DeployError(f"--gpu {value}: unknown pool; known: {', '.join(GPU_POOLS)}")
        elif value:
            ids.append(value)
    return list(dict.fromkeys(ids))


def _split_pair(text: str, where: str) -> tuple[str, str]:
    """KEY=VALUE, with the value's surrounding quotes removed; errors never quote the value."""
    key, sep, value = text.removeprefix("export ").partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not ENV_NAME.fullmatch(key):
        raise DeployError(f"{where}: expected KEY=VALUE")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped (no inline comments: values keep #)."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = _split_pair(line, f"{path}:{number}")
            env[key] = value
    return env


def is_secret(key: str, value: str) -> bool:
    """Credentials by name, or a URL with user:password@ in it (REDIS_URL, a MongoDB URI)."""
    if any(marker in key.upper() for marker in SECRET_MARKERS):
        return True
    _, scheme_sep, rest = value.partition("://")
    return bool(scheme_sep) and "@" in rest.split("/", 1)[0]


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """The request body with every secret env value replaced, for printing."""
    env = body.get("env")
    if not isinstance(env, dict):
        return body
    return body | {"env": {k: MASK if is_secret(k, v) else v for k, v in env.items()}}


def redact(text: str, secrets: Iterable[str]) -> str:
    """An API message may echo what it was sent; secret values never reach the terminal."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# --- the API ------------------------------------------------------------------------------------


Params = dict[str, str] | None


class Api(Protocol):
    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: Params = None
    ) -> Any: ...


def _say_retry(state: RetryCallState) -> None:
    wait = state.next_action.sleep if state.next_action else 0.0
    error = state.outcome.exception() if state.outcome else None
    print(f"deploy: {error}; trying again in {wait:.1f} s", file=sys.stderr)


@dataclass
class RestApi:
    """RunPod REST v1 with retries on 429, 5xx and connection errors (5 tries, doubling waits).

    A create (POST) that failed that way may still have happened on the server, so before it is
    sent again the collection is listed and an item already bearing the new name is taken as the
    one created: a retried create never leaves two templates or endpoints of one name (which the
    next run would refuse as ambiguous).
    """

    base_url: str
    api_key: str
    secrets: list[str] = field(default_factory=list)
    retry_wait: float = 1.0
    attempts: int = 5
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: Params = None
    ) -> Any:
        retrying = Retrying(
            retry=retry_if_exception_type(
                (TransientError, requests.ConnectionError, requests.Timeout)
            ),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.retry_wait, max=30),
            before_sleep=_say_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if method == "POST" and attempt.retry_state.attempt_number > 1:
                    made = self._created_by_an_earlier_try(path, body)
                    if made is not None:
                        return made
                return self._send(method, path, body, params)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _created_by_an_earlier_try(
        self, path: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        name = (body or {}).get("name")
        if name is None:
            return None
        items = self._send("GET", path, None, LIST_PARAMS.get(path))
        return find_by_name(items or [], name, path.strip("/").removesuffix("s"))

    def _send(self, method: str, path: str, body: dict[str, Any] | None, params: Params) -> Any:
        response = self.session.request(
            method,
            self.base_url.rstrip("/") + path,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(f"{method} {path}: HTTP {status}: {self._message(response)}")
        if status >= 400:
            raise DeployError(f"{method} {path} refused, HTTP {status}: {self._message(response)}")
        return response.json() if response.content else None

    def _message(self, response: requests.Response) -> str:
        """The API's own words, with any secret it echoes back masked."""
        try:
            payload = response.json()
        except ValueError:
            payload = response.text.strip() or response.reason
        if isinstance(payload, dict):
            payload = payload.get("message") or payload.get("error") or payload
        return redact(str(payload), [self.api_key, *self.secrets])


@dataclass
class DryRun:
    """Prints each request instead of sending it; lists come back empty, so it shows a create."""

    base_url: str

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: Params = None
    ) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        print(f"{method} {self.base_url.rstrip('/')}{path}{query}")
        if body is not None:
            print(json.dumps(masked(body), indent=2))
        kind = path.strip("/").split("/")[0].removesuffix("s")
        return [] if method == "GET" else {"id": f"<{kind} id>"}


# --- create or update ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What one run sets up; both request bodies are built from it."""

    name: str
    image: str
    env: dict[str, str]
    gpu_type_ids: list[str]
    network_volume_id: str | None
    workers_min: int
    workers_max: int
    idle_timeout_s: int
    execution_timeout_s: int
    flashboot: bool
    container_disk_gb: int

    def template(self) -> dict[str, Any]:
        """TemplateUpdateInput fields; a create adds isServerless."""
        return {
            "name": self.name,
            "imageName": self.image,
            "containerDiskInGb": self.container_disk_gb,
            "env": self.env,
        }

    def endpoint(self, template_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "templateId": template_id,
            "gpuTypeIds": self.gpu_type_ids,
            "gpuCount": 1,
            "allowedCudaVersions": ALLOWED_CUDA_VERSIONS,
            "workersMin": self.workers_min,
            "workersMax": self.workers_max,
            "idleTimeout": self.idle_timeout_s,
            "executionTimeoutMs": self.execution_timeout_s * 1000,
            "flashboot": self.flashboot,
        }
        if self.network_volume_id:
            body["networkVolumeId"] = self.network_volume_id
        return body


def find_by_name(items: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any] | None:
    """The one item with this name (a " -fb" suffix ignored); several is ambiguous, so refused."""
    found = [item for item in items if FLASHBOOT_SUFFIX.sub("", item.get("name") or "") == name]
    if len(found) > 1:
        ids = ", ".join(str(item.get("id")) for item in found)
        raise DeployError(f"{len(found)} {kind}s are named {name!r} ({ids}); rename or delete one")
    return found[0] if found else None


def deploy(api: Api, plan: Deployment) -> str:
    """Create or update the template, then the endpoint on it; returns the endpoint id."""
    templates = api.call("GET", "/templates", params=LIST_PARAMS["/templates"])
    template = find_by_name(templates, plan.name, "template")
    if template and template.get("isServerless") is False:
        raise DeployError(f"template {plan.name!r} is a Pod template; choose another --name")
    if template:
        template_id = template["id"]
        api.call("PATCH", f"/templates/{template_id}", plan.template())
    else:
        template_id = api.call("POST", "/templates", plan.template() | {"isServerless": True})["id"]

    endpoint = find_by_name(api.call("GET", "/endpoints"), plan.name, "endpoint")
    if endpoint:
        api.call("PATCH", f"/endpoints/{endpoint['id']}", plan.endpoint(template_id))
        return endpoint["id"]
    endpoint_id = api.call("POST", "/endpoints", plan.endpoint(template_id))["id"]
    if not plan.flashboot:
        api.call("PATCH", f"/endpoints/{endpoint_id}", {"flashboot": False})
    return endpoint_id


# --- command line -------------------------------------------------------------------------------


def _env_pair(text: str) -> tuple[str, str]:
    try:
        return _split_pair(text, "--env")
    except DeployError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="template and endpoint name")
    parser.add_argument("--image", required=True, type=image_ref, help="image:version or @sha256")
    parser.add_argument("--network-volume-id", help="network volume with the models")
    parser.add_argument(
        "--gpu",
        action="append",
        help=f"pool id or GPU type, repeatable or comma list (default {','.join(DEFAULT_GPUS)})",
    )
    parser.add_argument("--workers-min", type=int, default=0)
    parser.add_argument("--workers-max", type=int, default=3)
    parser.add_argument("--idle-timeout", type=int, default=5, help="seconds (1-3600)")
    parser.add_argument("--execution-timeout", type=int, default=600, help="seconds per job")
    parser.add_argument("--no-flashboot", action="store_true", help="switch FlashBoot off")
    parser.add_argument("--container-disk-gb", type=int, default=CONTAINER_DISK_GB)
    parser.add_argument("--env-file", type=Path, help="KEY=VALUE lines for the worker, e.g. .env")
    parser.add_argument(
        "--env", type=_env_pair, action="append", default=[], help="KEY=VALUE, repeatable"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the requests, send none")
    parser.add_argument("--api-url", default=API_URL, help=argparse.SUPPRESS)
    parser.add_argument(
        "--retry-wait", type=float, default=1.0, help="first wait between retries, in seconds"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.idle_timeout <= 3600:
        parser.error("--idle-timeout must be between 1 and 3600 seconds")
    if not 0 <= args.workers_min <= args.workers_max:
        parser.error("need 0 <= --workers-min <= --workers-max")

    api_key = os.environ.get("RUNPOD_API_KEY", "")
    try:
        env = {"MODEL_DIR": str(RUNPOD_VOLUME_MODELS)}
        if args.env_file:
            env |= read_env_file(args.env_file)
        env |= dict(args.env)
        plan = Deployment(
            name=args.name,
            image=args.image,
            env=env,
            gpu_type_ids=gpu_type_ids(args.gpu or DEFAULT_GPUS),
            network_volume_id=args.network_volume_id,
            workers_min=args.workers_min,
            workers_max=args.workers_max,
            idle_timeout_s=args.idle_timeout,
            execution_timeout_s=args.execution_timeout,
            flashboot=not args.no_flashboot,
            container_disk_gb=args.container_disk_gb,
        )
        if args.dry_run:
            print("dry run: nothing is sent and every list is taken as empty, so this shows a")
            print(f"first deploy; a real run PATCHes a template and endpoint named {args.name!r}")
            endpoint_id = deploy(DryRun(args.api_url), plan)
        elif not api_key:
            raise DeployError("RUNPOD_API_KEY is not set (https://console.runpod.io/user/settings)")
        else:
            secrets = [value for key, value in env.items() if is_secret(key, value)]
            endpoint_id = deploy(RestApi(args.api_url, api_key, secrets, args.retry_wait), plan)
    except (DeployError, TransientError, requests.RequestException, OSError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    print(f"endpoint {endpoint_id} ({args.name})")
    print(f"send jobs to {JOBS_URL.format(endpoint_id=endpoint_id)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
