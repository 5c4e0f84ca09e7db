"""Start-up, in order: settings -> logging -> offline switches -> models (warmed up) -> units -> stores."""

from __future__ import annotations

import logging
import sys
import time

from PIL import Image

from models.runtime import prepare_offline
from rules.model import PHYSICAL_UNITS, to_millimetres
from rules.slots import prepare as prepare_rule_reader
from worker.actions import Worker
from worker.runtime import load_models, open_stores, prepare_stores
from worker.settings import ConfigError, Settings, load_settings
from worker.timing import Stages

log = logging.getLogger("worker")


# Libraries that log request headers (botocore: the R2 access key id in Authorization) or whole
# payloads at DEBUG: never below WARNING, whatever LOG_LEVEL says.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "pymongo", "redis", "PIL")


def configure_logging(level: str) -> None:
    """LOG_LEVEL for the worker's own loggers. ``force``: importing runpod (or a library) may
    have configured the root logger already, and then a plain basicConfig does nothing."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))


def build_worker(settings: Settings | None = None, imports_ms: float | None = None) -> Worker:
    """Build the worker once per process. A bad configuration stops the process with one clear line.

    What each step of the start-up took is kept for ``health`` (``imports_ms``: the caller's
    imports before this, e.g. handler.py's)."""
    startup = Stages()
    if imports_ms is not None:
        startup.share("imports", imports_ms)
    try:
        with startup("settings"):
            settings = settings or load_settings()
    except ConfigError as error:
        raise SystemExit(f"worker cannot start: {error}") from None
    configure_logging(settings.log_level)
    prepare_offline(settings.runtime_dir)
    # PIL refuses images over its own pixel limit while opening them; make that limit ours.
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels

    start = time.perf_counter()
    models = load_models(settings, startup)
    with startup("rule reader"):
        # pint builds its unit tables on first use (~0.4 s): here, not in the first job's rules
        for unit in PHYSICAL_UNITS:
            to_millimetres(1.0, unit)
        prepare_rule_reader()  # its phrase table and English word list (~0.3 s)
    with startup("stores"):
        stores = open_stores(settings)
        prepare_stores(stores)
    log.info(
        "worker ready in %.2f s (model dir %s)", time.perf_counter() - start, settings.model_dir
    )
    worker = Worker(settings, models, stores)
    with startup("outbox replay"):
        worker.persister.replay()
    worker.startup_ms = {stage: round(ms, 1) for stage, ms in startup.ms().items()}
    return worker
