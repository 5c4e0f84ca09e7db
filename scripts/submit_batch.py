"""Push a batch of images through the worker and write results.jsonl and a report.html.

    python -m scripts.submit_batch photos/ --endpoint abc123 --out run1        # RunPod endpoint
    python -m scripts.submit_batch "photos/*.jpg" --local --out run1          # in this process
    python -m scripts.submit_batch urls.csv --endpoint abc123 --rule-set office --out run2
    python -m scripts.submit_batch photos/ --endpoint abc123 --api batch --out run3  # batch jobs

Inputs: a folder of images, a glob, a CSV (a ``url``, ``key`` or ``path`` column; every other
column becomes metadata) or a JSONL file (``{"url" | "key" | "path": ..., "metadata": {...}}`` per
line). Several images go into each job (``--batch-size``, and never more than ``--max-payload-mb``
of base64 per job: RunPod's /run takes 10 MB). Jobs run ``--concurrency`` at a time, with
retries and exponential backoff on 429, 5xx, connection errors and timed-out jobs.

A running job's progress (the worker's ``progress_update``, seen in each status poll) moves the
bar. ``--api batch`` sends the whole run as one of RunPod's batch jobs instead (see
client.batch.BatchJobs).

Resumable: every finished image is appended to OUT/results.jsonl at once, and a re-run skips the
images already there (``--retry-failed`` tries the failed ones again). Ctrl-C stops submitting,
cancels what is in flight, and still writes the report for what finished.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from client.batch import BatchConfig, run


def parse_args(argv: list[str] | None) -> BatchConfig:
    """The command line as one run's settings: --rules-file adds to --rules, --name defaults to
    OUT's name, --local leaves the endpoint out."""
    parser = argparse.ArgumentParser(
        description="Analyse many images with the mug positioning worker.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("inputs", nargs="+", help="folders, globs, .csv or .jsonl files")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", help="RunPod endpoint id (needs RUNPOD_API_KEY)")
    target.add_argument("--local", action="store_true", help="run the worker in this process")
    parser.add_argument(
        "--api",
        choices=["run", "batch"],
        default="run",
        help="run: /run and /status per job (default); batch: RunPod's batch-jobs API (beta), "
        "one batch for the whole run, for large offline runs",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for results and report")
    parser.add_argument("--name", help="batch name, stored as metadata (default: OUT's name)")
    parser.add_argument("--rules", action="append", help="a rule sentence (repeatable)")
    parser.add_argument("--rules-file", type=Path, help="JSON list of rules (sentences or objects)")
    parser.add_argument("--rule-set", help="name of a stored rule set")
    parser.add_argument("--mm-per-px", type=float, help="calibration for every image")
    parser.add_argument(
        "--camera",
        help="a stored camera profile (put_camera) for every image without a camera_profile column",
    )
    parser.add_argument(
        "--options", type=json.loads, help="analyze options as JSON, e.g. '{\"conf\": 0.3}'"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="images per job (default 8)")
    parser.add_argument("--max-payload-mb", type=float, default=9.0, help="request size cap (9)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in flight (default 8)")
    parser.add_argument("--retries", type=int, default=5, help="tries after the first (5)")
    parser.add_argument("--retry-wait", type=float, default=1.0, help="first backoff in s (1)")
    parser.add_argument("--execution-timeout", type=int, default=600, help="per job, s (600)")
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="job TTL incl. queue, s (1 day)")
    parser.add_argument("--webhook", help="URL RunPod posts each job's result to")
    parser.add_argument("--poll", type=float, default=1.0, help="first status poll interval, s")
    parser.add_argument("--retry-failed", action="store_true", help="redo images that failed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    rules = args.rules
    if args.rules_file:
        rules = (rules or []) + json.loads(args.rules_file.read_text())
    if args.api == "batch" and args.local:
        parser.error("--api batch needs --endpoint")
    return BatchConfig(
        inputs=args.inputs,
        out=args.out,
        endpoint=args.endpoint,  # None with --local
        api=args.api,
        name=args.name or args.out.name,
        rules=rules,
        rule_set=args.rule_set,
        mm_per_px=args.mm_per_px,
        camera=args.camera,
        options=args.options,
        batch_size=args.batch_size,
        max_payload_mb=args.max_payload_mb,
        concurrency=args.concurrency,
        retries=args.retries,
        retry_wait=args.retry_wait,
        execution_timeout=args.execution_timeout,
        ttl=args.ttl,
        webhook=args.webhook,
        poll=args.poll,
        retry_failed=args.retry_failed,
        no_progress=args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
