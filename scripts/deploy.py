"""Create or update this worker's RunPod template and serverless endpoint (REST API v2).

    export RUNPOD_API_KEY=...
    python -m scripts.deploy --name mugpos --image ghcr.io/acme/mugpos:0.4.0 \\
        --network-volume-id agv6w2qcg7 --env-file .env
    python -m scripts.deploy --name mugpos --image ghcr.io/acme/mugpos:0.4.0 --dry-run

A second run with the same --name updates the template and the endpoint in place (PATCH), so a
release is: push a new image tag, run this again with the same --env-file (the template's env is
replaced by what each run gives). --dry-run prints the requests (secrets masked) and contacts
nothing, so it needs no API key.

The REST v2 client and the plan are ``client.deploy``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import requests

from client.deploy import (
    API_URL,
    CONTAINER_DISK_GB,
    DEFAULT_GPUS,
    FLASHBOOT,
    IDLE_TIMEOUT_S,
    JOBS_URL,
    DeployError,
    Deployment,
    Scaling,
    TransientError,
    gpu_pools,
    image_ref,
    run,
    split_pair,
    worker_env,
)


def _env_pair(text: str) -> tuple[str, str]:
    try:
        return split_pair(text, "--env")
    except DeployError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _image(text: str) -> str:
    try:
        return image_ref(text)
    except DeployError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _scaling(text: str) -> Scaling:
    """``delay:<s>`` (queue delay, >= 0.5 s) or ``requests:<n>`` (jobs per worker, >= 1)."""
    kind, _, number = text.partition(":")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if kind == "delay" and value >= 0.5:
        return ("QUEUE_DELAY", value)
    if kind == "requests" and value >= 1 and value.is_integer():
        return ("REQUEST_COUNT", value)
    raise argparse.ArgumentTypeError(
        f"{text!r}: expected delay:<seconds, at least 0.5> or requests:<jobs, at least 1>"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="template and endpoint name")
    parser.add_argument("--image", required=True, type=_image, help="image:version or @sha256")
    parser.add_argument(
        "--network-volume-id",
        action="append",
        default=[],
        help="network volume with the models (repeatable: one per data centre)",
    )
    parser.add_argument(
        "--gpu",
        action="append",
        help=f"GPU pool id, repeatable or comma list, first preferred (default "
        f"{','.join(DEFAULT_GPUS)})",
    )
    parser.add_argument("--workers-min", type=int, default=0)
    parser.add_argument("--workers-max", type=int, default=3)
    parser.add_argument(
        "--idle-timeout",
        type=int,
        help=f"seconds (1-3600; default {IDLE_TIMEOUT_S}); not with --scaling requests",
    )
    parser.add_argument("--execution-timeout", type=int, default=600, help="seconds per job")
    parser.add_argument(
        "--scaling",
        type=_scaling,
        default=("QUEUE_DELAY", 4.0),
        help="delay:<s> (scale up when a job waits that long; default delay:4) or requests:<n>",
    )
    parser.add_argument(
        "--flashboot",
        choices=sorted(FLASHBOOT),
        default="on",
        help="FlashBoot: on (default), priority, off",
    )
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
    if args.idle_timeout is not None and args.scaling[0] == "REQUEST_COUNT":
        parser.error("--idle-timeout does not go with --scaling requests:<n> (v2 refuses it)")
    args.idle_timeout = IDLE_TIMEOUT_S if args.idle_timeout is None else args.idle_timeout
    if not 1 <= args.idle_timeout <= 3600:
        parser.error("--idle-timeout must be between 1 and 3600 seconds")
    if not 0 <= args.workers_min <= args.workers_max:
        parser.error("need 0 <= --workers-min <= --workers-max")

    api_key = os.environ.get("RUNPOD_API_KEY", "")
    try:
        plan = Deployment(
            name=args.name,
            image=args.image,
            env=worker_env(args.network_volume_id, args.env_file, args.env),
            gpu_pools=gpu_pools(args.gpu or DEFAULT_GPUS),
            network_volume_ids=list(dict.fromkeys(args.network_volume_id)),
            workers_min=args.workers_min,
            workers_max=args.workers_max,
            idle_timeout_s=args.idle_timeout,
            execution_timeout_s=args.execution_timeout,
            flashboot=FLASHBOOT[args.flashboot],
            scaling=args.scaling,
            container_disk_gb=args.container_disk_gb,
        )
        endpoint_id = run(
            plan, args.api_url, api_key, dry_run=args.dry_run, retry_wait=args.retry_wait
        )
    except (DeployError, TransientError, requests.RequestException, OSError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    print(f"endpoint {endpoint_id} ({args.name})")
    print(f"send jobs to {JOBS_URL.format(endpoint_id=endpoint_id)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
