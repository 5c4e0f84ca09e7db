"""Start the MCP server.

    python -m mcp_worker --local                                   # stdio, the worker in-process
    python -m mcp_worker --endpoint <id> --transport http --port 8765   # Streamable HTTP, RunPod

``--local`` builds the worker here (models from MODEL_DIR, stores from the environment, as the
handler does); ``--endpoint`` sends each tool call to a RunPod endpoint as a job (RUNPOD_API_KEY;
RUNPOD_ENDPOINT_BASE_URL overrides the API's address), waiting at most ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mcp_worker.backends import Backend, EndpointBackend, LocalBackend
from mcp_worker.server import build_server
from worker.fetch import is_loopback_host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mcp_worker", description=__doc__.split("\n")[0]
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--local", action="store_true", help="run the worker in this process")
    target.add_argument("--endpoint", help="a RunPod endpoint id (needs RUNPOD_API_KEY)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="for http: a loopback address")
    parser.add_argument("--port", type=int, default=8765, help="for http (default 8765)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="with --endpoint: seconds a job may take (300)"
    )
    args = parser.parse_args(argv)
    if args.transport == "http" and not is_loopback_host(args.host):
        # no authentication here, and --local reads image_path from this machine's disk
        parser.error(
            f"refusing to listen on {args.host}: the MCP server has no authentication; keep it on "
            "loopback and put an authenticating proxy in front to reach it from elsewhere"
        )
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    backend: Backend = (
        LocalBackend() if args.local else EndpointBackend(args.endpoint, timeout_s=args.timeout)
    )
    server = build_server(backend)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
