"""Shared fixtures: demo models built once per session and loaded through the production code path."""

from __future__ import annotations

import base64
import io
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from models.runtime import prepare_offline
from tests.services import RedisServer, S3Server

if TYPE_CHECKING:
    from worker.actions import Worker
    from worker.runtime import ModelSet

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tests" / "assets"
_RUNTIME = Path(tempfile.mkdtemp(prefix="mugpos-test-runtime-"))


def pytest_configure(config: pytest.Config) -> None:
    """No network and no writes outside a temp dir for the model libraries: this runs before the
    test modules are collected, so before anything imports ultralytics or transformers (the worker
    is imported inside the fixtures below for the same reason)."""
    prepare_offline(_RUNTIME)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo models exactly as ``python -m scripts.fetch_models --demo`` writes them."""
    from scripts.fetch_models import main as fetch_models

    dest = tmp_path_factory.mktemp("models")
    assert fetch_models(["--demo", "--dest", str(dest)]) == 0
    return dest


@pytest.fixture(scope="session")
def demo_models(demo_model_dir: Path) -> ModelSet:
    from worker.runtime import load_models
    from worker.settings import Settings

    settings = Settings(model_dir=demo_model_dir, data_dir=_RUNTIME / "unused", warmup_imgsz=320)
    return load_models(settings)


@pytest.fixture
def make_settings(demo_model_dir: Path, tmp_path: Path):
    from worker.settings import Settings

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "model_dir": demo_model_dir,
            "data_dir": tmp_path / "data",
            "warmup_imgsz": 320,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
def make_worker(make_settings, demo_models: ModelSet):
    """A worker on the session's demo models, with fresh embedded stores in a temp DATA_DIR."""
    from worker.actions import Worker
    from worker.runtime import open_stores

    def build(models: ModelSet | None = None, **overrides: object) -> Worker:
        settings = make_settings(**overrides)
        return Worker(settings, models or demo_models, open_stores(settings))

    return build


@pytest.fixture
def app(make_worker) -> Worker:
    return make_worker()


def encode_image(image: Image.Image, image_format: str = "JPEG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="session")
def desk_b64() -> str:
    return base64.b64encode((ASSETS / "desk.jpg").read_bytes()).decode()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No worker variable from the developer's shell leaks into a settings test."""
    from worker.settings import Settings

    for name in list(os.environ):
        if name in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    yield


# ---------------------------------------------------------------- store servers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    from storage.s3 import connect

    name = f"mugpos-{uuid.uuid4().hex[:12]}"
    connect(s3_server.url, "test", "test", "us-east-1", 5).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["mongomock", "real"])
def mongo_uri(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """mongomock behind the production client code; a real server too when MONGODB_TEST_URI is set."""
    if request.param == "real":
        uri = os.environ.get("MONGODB_TEST_URI")
        if not uri:
            pytest.skip("MONGODB_TEST_URI is not set (no MongoDB server can be installed here)")
        yield uri
        return
    import mongomock

    client = mongomock.MongoClient()
    monkeypatch.setattr("storage.mongo.MongoClient", lambda *args, **kwargs: client)
    yield "mongodb://mongomock.test:27017"


@pytest.fixture
def mongo_db() -> str:
    return f"mugpos_test_{uuid.uuid4().hex[:12]}"
