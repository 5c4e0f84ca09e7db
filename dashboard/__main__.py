"""Start the dashboard: ``python -m dashboard [--host 127.0.0.1] [--port 8050]``.

It reads the stores the worker's environment configures (``MONGODB_URI``, ``R2_*``, else the
embedded ones under ``DATA_DIR``). On loopback it is open; on any other address it starts only
with ``DASHBOARD_TOKEN`` set, and then every request must carry the token.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import SecretStr

from dashboard.app import create_app
from worker.fetch import is_loopback_host
from worker.runtime import open_stores
from worker.settings import ConfigError, Settings, read_settings


class DashboardSettings(Settings):
    """The worker's settings (its stores) and the dashboard's own token, not a worker setting."""

    dashboard_token: SecretStr | None = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback)"
    )
    parser.add_argument("--port", type=int, default=8050)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = read_settings(DashboardSettings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
    if token is None and not is_loopback_host(args.host):
        print(
            f"refusing to listen on {args.host} without DASHBOARD_TOKEN: beyond loopback the "
            "dashboard needs a token (or use --host 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    app = create_app(open_stores(settings), token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
