"""This worker's RunPod template and serverless endpoint, created or updated through REST API v2.

A ``Deployment`` is the plan; ``deploy`` lists, then PATCHes what bears its name or POSTs it anew,
through ``RestApi`` (retries, secrets masked in errors) or ``DryRun`` (prints, sends nothing).

From RunPod's published v2 schema (runpod/docs api-reference-v2/openapi.json, 2.0.0, and
migrate-from-v1.mdx; the parts used are kept in tests/schemas/runpod-rest-v2.json):
- base https://api.runpod.io/v2, ``Authorization: Bearer <key>``; GET/POST /templates and
  /serverless, PATCH /templates/{id} and /serverless/{id}; lists come wrapped
  (``{"templates": [...]}``, ``{"endpoints": [...]}``), creates answer 201 with the item;
- request bodies are closed: an unknown field is a 422, so every body here uses v2's names;
- a template is a snapshot taken when an endpoint is made from it: a later template edit does not
  reach the endpoint, so an update PATCHes the endpoint with ``templateId`` again (a new release);
- ``gpu.pools`` takes pool ids (``HOPPER_141``: the ``pool`` of GET /v2/catalog/gpus), passed as
  given; ``flashboot`` is OFF | FLASHBOOT | PRIORITY_FLASHBOOT and OFF unless set, so it is always
  sent; workers (min, max, idleTimeout) and scaling (QUEUE_DELAY or REQUEST_COUNT) are nested;
  ``timeout`` is the execution timeout in ms; errors are problem+json (title, detail, errors).
Inferred: endpoint names may come back with " -fb" appended (the old FlashBoot marker,
runpodctl#261), so that suffix still matches.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from worker.settings import RUNPOD_VOLUME_MODELS

API_URL = "https://api.runpod.io/v2"
JOBS_URL = "https://api.runpod.ai/v2/{endpoint_id}/run"
# The image's torch is a CUDA 13.0 build: hosts whose driver offers less cannot run it.
MIN_CUDA_VERSION = "13.0"
CONTAINER_DISK_GB = 30
IDLE_TIMEOUT_S = 5
DEFAULT_GPUS = ["HOPPER_141", "ADA_80_PRO"]
POOL_ID = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
FLASHBOOT = {"off": "OFF", "on": "FLASHBOOT", "priority": "PRIORITY_FLASHBOOT"}
# each collection's list key in v2's wrapped list responses
LIST_KEYS = {"/templates": "templates", "/serverless": "endpoints"}
SECRET_MARKERS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "URI")
MASK = "***"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FLASHBOOT_SUFFIX = re.compile(r"\s*-fb$")


class DeployError(Exception):
    """Something the user has to fix (or the API refused): printed, exit status 1."""


class TransientError(Exception):
    """HTTP 429 or 5xx: the same request may well succeed a moment later (``retry_after``: the
    seconds a 429's Retry-After header asks for)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- arguments ----------------------------------------------------------------------------------


def image_ref(image: str) -> str:
    """Versioned tags or digests only: workers cache images, so a re-pushed tag can run old code."""
    name, _, digest = image.partition("@")
    if digest:
        if not digest.startswith("sha256:"):
            raise DeployError(f"{image!r}: a digest looks like @sha256:<hex>")
        return image
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        raise DeployError(
            f"{image!r}: give a versioned tag such as :0.4.0 or a @sha256 digest, not "
            f"{':latest' if tag else 'an untagged image'} (workers keep running a cached image)"
        )
    return image


def gpu_pools(values: Iterable[str]) -> list[str]:
    """Pool ids as v2's ``gpu.pools`` takes them, in priority order, each once."""
    pools: list[str] = []
    for value in (part.strip() for item in values for part in item.split(",")):
        if not value:
            continue
        if not POOL_ID.fullmatch(value):
            raise DeployError(
                f"--gpu {value!r}: give serverless GPU pool ids such as HOPPER_141 or ADA_80_PRO "
                "(the 'pool' of each GPU in GET https://api.runpod.io/v2/catalog/gpus), "
                "not GPU type names"
            )
        pools.append(value)
    return list(dict.fromkeys(pools))


def split_pair(text: str, where: str) -> tuple[str, str]:
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
            key, value = split_pair(line, f"{path}:{number}")
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


class Api(Protocol):
    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any: ...


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", 0)))
    except ValueError:  # an HTTP date: wait the usual way
        return 0.0


@dataclass(frozen=True)
class WaitForRateLimit:
    """Doubling waits, but never shorter than the Retry-After a 429 asked for."""

    doubling: wait_exponential

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = error.retry_after if isinstance(error, TransientError) else 0.0
        return max(self.doubling(state), asked)


def _say_retry(state: RetryCallState) -> None:
    wait = state.next_action.sleep if state.next_action else 0.0
    error = state.outcome.exception() if state.outcome else None
    print(f"deploy: {error}; trying again in {wait:.1f} s", file=sys.stderr)


def listed(answer: Any, path: str) -> list[dict[str, Any]]:
    """The items of a v2 list answer (``{"templates": [...]}``, ``{"endpoints": [...]}``)."""
    items = answer.get(LIST_KEYS[path]) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise DeployError(f"GET {path}: expected {{{LIST_KEYS[path]!r}: [...]}} in the answer")
    return items


@dataclass
class RestApi:
    """RunPod REST v2 with retries on 429, 5xx and connection errors (5 tries, doubling waits).

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

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        retrying = Retrying(
            retry=retry_if_exception_type(
                (TransientError, requests.ConnectionError, requests.Timeout)
            ),
            stop=stop_after_attempt(self.attempts),
            wait=WaitForRateLimit(wait_exponential(multiplier=self.retry_wait, max=30)),
            before_sleep=_say_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if method == "POST" and attempt.retry_state.attempt_number > 1:
                    made = self._created_by_an_earlier_try(path, body)
                    if made is not None:
                        return made
                return self._send(method, path, body)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _created_by_an_earlier_try(
        self, path: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        name = (body or {}).get("name")
        if name is None or path not in LIST_KEYS:
            return None
        items = listed(self._send("GET", path, None), path)
        return find_by_name(items, name, LIST_KEYS[path].removesuffix("s"))

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        response = self.session.request(
            method,
            self.base_url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                f"{method} {path}: HTTP {status}: {self._message(response)}",
                _retry_after(response) if status == 429 else 0.0,
            )
        if status >= 400:
            raise DeployError(f"{method} {path} refused, HTTP {status}: {self._message(response)}")
        return response.json() if response.content else None

    def _message(self, response: requests.Response) -> str:
        """The API's own words (problem+json: detail and each error), secrets it echoes masked."""
        try:
            payload = response.json()
        except ValueError:
            payload = response.text.strip() or response.reason
        if isinstance(payload, dict):
            words = [str(payload.get("detail") or payload.get("title") or "")]
            words += [str(error) for error in payload.get("errors") or []]
            payload = "; ".join(word for word in words if word) or payload
        return redact(str(payload), [self.api_key, *self.secrets])


@dataclass
class DryRun:
    """Prints each request instead of sending it; lists come back empty, so it shows a create."""

    base_url: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        print(f"{method} {self.base_url.rstrip('/')}{path}")
        if body is not None:
            print(json.dumps(masked(body), indent=2))
        kind = LIST_KEYS["/" + path.strip("/").split("/")[0]]
        return {kind: []} if method == "GET" else {"id": f"<{kind.removesuffix('s')} id>"}


# --- create or update ---------------------------------------------------------------------------

Scaling = tuple[Literal["QUEUE_DELAY", "REQUEST_COUNT"], float]


@dataclass(frozen=True)
class Deployment:
    """What one run sets up; every request body is built from it."""

    name: str
    image: str
    env: dict[str, str]
    gpu_pools: list[str]
    network_volume_ids: list[str]
    workers_min: int
    workers_max: int
    idle_timeout_s: int
    execution_timeout_s: int
    flashboot: str
    scaling: Scaling
    container_disk_gb: int

    def template(self) -> dict[str, Any]:
        """UpdateTemplateRequest; a create adds ``serverless``."""
        return {
            "name": self.name,
            "image": self.image,
            "disk": self.container_disk_gb,
            "env": self.env,
        }

    def endpoint(self, template_id: str) -> dict[str, Any]:
        """UpdateEndpointRequest: on a PATCH, ``templateId`` applies the template again."""
        kind, value = self.scaling
        workers: dict[str, Any] = {"min": self.workers_min, "max": self.workers_max}
        if kind == "QUEUE_DELAY":
            scaling: dict[str, Any] = {"type": kind, "queueDelay": value}
            workers["idleTimeout"] = self.idle_timeout_s
        else:  # v2 refuses an idle timeout on a queue endpoint that scales by request count
            scaling = {"type": kind, "requestCount": int(value)}
        return {
            "name": self.name,
            "templateId": template_id,
            # a floor, not a set: [] clears a set an older deploy left (v2 refuses both at once)
            "gpu": {
                "pools": self.gpu_pools,
                "count": 1,
                "minCudaVersion": MIN_CUDA_VERSION,
                "allowedCudaVersions": [],
            },
            "workers": workers,
            "scaling": scaling,
            "timeout": self.execution_timeout_s * 1000,
            "flashboot": self.flashboot,
            "networkVolumes": self.network_volume_ids,
        }


def find_by_name(items: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any] | None:
    """The one item with this name (a " -fb" suffix ignored); several is ambiguous, so refused."""
    found = [item for item in items if FLASHBOOT_SUFFIX.sub("", item.get("name") or "") == name]
    if len(found) > 1:
        ids = ", ".join(str(item.get("id")) for item in found)
        raise DeployError(f"{len(found)} {kind}s are named {name!r} ({ids}); rename or delete one")
    return found[0] if found else None


def deploy(api: Api, plan: Deployment) -> str:
    """Create or update the template, then the endpoint from it; returns the endpoint id."""
    templates = listed(api.call("GET", "/templates"), "/templates")
    template = find_by_name(templates, plan.name, "template")
    if template and template.get("serverless") is False:
        raise DeployError(f"template {plan.name!r} is a Pod template; choose another --name")
    if template:
        template_id = template["id"]
        api.call("PATCH", f"/templates/{template_id}", plan.template())
    else:
        template_id = api.call("POST", "/templates", plan.template() | {"serverless": True})["id"]

    endpoints = listed(api.call("GET", "/serverless"), "/serverless")
    endpoint = find_by_name(endpoints, plan.name, "endpoint")
    if endpoint:
        api.call("PATCH", f"/serverless/{endpoint['id']}", plan.endpoint(template_id))
        return str(endpoint["id"])
    created = api.call("POST", "/serverless", plan.endpoint(template_id) | {"type": "QUEUE"})
    return str(created["id"])


# --- a release ----------------------------------------------------------------------------------


def worker_env(
    network_volume_ids: Sequence[str], env_file: Path | None, pairs: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """The template's env: the env file, then the pairs, over MODEL_DIR on the volume (with a
    network volume the models are on it, unless the env says otherwise)."""
    env = {"MODEL_DIR": str(RUNPOD_VOLUME_MODELS)} if network_volume_ids else {}
    if env_file:
        env |= read_env_file(env_file)
    return env | dict(pairs)


def run(plan: Deployment, api_url: str, api_key: str, *, dry_run: bool, retry_wait: float) -> str:
    """Deploy the plan, or print the requests of a first deploy and send none; the endpoint id."""
    if dry_run:
        print("dry run: nothing is sent and every list is taken as empty, so this shows a")
        print(f"first deploy; a real run PATCHes a template and endpoint named {plan.name!r}")
        return deploy(DryRun(api_url), plan)
    if not api_key:
        raise DeployError("RUNPOD_API_KEY is not set (https://console.runpod.io/user/settings)")
    secrets = [value for key, value in plan.env.items() if is_secret(key, value)]
    return deploy(RestApi(api_url, api_key, secrets, retry_wait), plan)
