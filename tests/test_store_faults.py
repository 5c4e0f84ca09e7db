"""The worker with all three production stores configured (SPEC 5): the happy path, and faults.

Redis and S3 are real servers on loopback; MongoDB is mongomock behind the production client code
(or a real server with MONGODB_TEST_URI). Each fault: the analysis still comes back, ``persisted``
says what was not written, and once the store is back the outbox is replayed and the record or
object is there exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from PIL import Image, ImageEnhance
from pymongo.errors import ServerSelectionTimeoutError

from tests.conftest import ASSETS, encode_image
from tests.services import RedisServer, S3Server, blackhole, free_port
from worker.actions import Worker
from worker.concurrency import JobRunner
from worker.runtime import ModelSet, open_stores, prepare_stores
from worker.settings import Settings

pytestmark = pytest.mark.slow

DESK = (ASSETS / "desk.jpg").read_bytes()
DESK_B64 = base64.b64encode(DESK).decode()


def run(app: Worker, payload: dict[str, Any], job_id: str) -> dict[str, Any]:
    output = app.handle({"id": job_id, "input": payload})
    json.dumps(output, allow_nan=False)
    assert "error" not in output, output
    return output


def build(settings: Settings, models: ModelSet) -> Worker:
    stores = open_stores(settings)
    prepare_stores(stores)
    return Worker(settings, models, stores)


@pytest.fixture
def configure(make_settings, mongo_uri: str, mongo_db: str, s3_server: S3Server, s3_bucket: str):
    """Settings with every store configured; a test may point one of them elsewhere."""

    def settings(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "mongodb_uri": mongo_uri,
            "mongodb_db": mongo_db,
            "r2_endpoint_url": s3_server.url,
            "r2_access_key_id": "test",
            "r2_secret_access_key": "test",
            "r2_bucket": s3_bucket,
            "r2_region": "us-east-1",
            "store_timeout_s": 1.0,
        }
        values.update(overrides)
        return make_settings(**values)

    return settings


def object_keys(app: Worker) -> list[str]:
    listed = app.stores.objects.client.list_objects_v2(Bucket=app.stores.objects.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def count_uploads(app: Worker) -> list[str]:
    uploads: list[str] = []
    app.stores.objects.client.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: uploads.append(params["url_path"])
    )
    return uploads


def test_all_stores_first_job_writes_everything_second_is_a_fast_cache_hit(
    configure, redis_url: str, demo_models: ModelSet
) -> None:
    app = build(configure(redis_url=redis_url), demo_models)
    assert [app.stores.records.backend, app.stores.objects.backend, app.stores.cache.backend] == [
        "mongodb",
        "s3",
        "redis",
    ]
    uploads = count_uploads(app)
    first = run(app, {"image": DESK_B64}, "job-1")
    assert first["persisted"] == {"record": True, "objects": True, "cache": "stored"}
    assert app.stores.records.get_analysis("job-1")["image"]["sha256"] == first["image"]["sha256"]
    original, annotated = first["artifacts"]["original_key"], first["artifacts"]["annotated_key"]
    assert object_keys(app) == sorted([original, annotated])
    with urllib.request.urlopen(first["artifacts"]["annotated_url"], timeout=5) as response:
        assert Image.open(io.BytesIO(response.read())).format == "JPEG"
    assert len(redis.Redis.from_url(redis_url).keys("mugpos:analysis:*")) == 1

    second = run(app, {"image": DESK_B64}, "job-2")
    assert second["persisted"] == {"record": True, "objects": True, "cache": "hit"}
    assert second["timings_ms"]["total"] < first["timings_ms"]["total"] / 2
    assert app.stores.records.get_analysis("job-2")["cache_hit"] is True

    run(app, {"image": DESK_B64, "options": {"cache": False}}, "job-1")  # RunPod retries job-1
    assert app.stores.records.analyses.count_documents({}) == 2
    originals = [path for path in uploads if "/originals/" in path]
    assert len(originals) == 1  # the same image is stored once, whatever job sent it


def test_redis_stopped_mid_run_skips_the_cache(configure, demo_models: ModelSet) -> None:
    server = RedisServer()
    try:
        app = build(configure(redis_url=server.url), demo_models)
        assert run(app, {"image": DESK_B64}, "r1")["persisted"]["cache"] == "stored"
        server.stop()
        start = time.monotonic()
        down = run(app, {"image": DESK_B64}, "r2")
        assert time.monotonic() - start < 10
        assert down["persisted"] == {"record": True, "objects": True, "cache": "unavailable"}
        assert run(app, {"action": "health"}, "h")["stores"]["cache"]["ok"] is False
        server = RedisServer(port=server.port)  # Redis is back (empty)
        back = run(app, {"image": DESK_B64}, "r3")
        assert back["persisted"]["cache"] == "stored"
        assert len(redis.Redis.from_url(server.url).keys("mugpos:analysis:*")) == 1
    finally:
        server.stop()


def test_r2_at_a_closed_port_then_back(configure, redis_url: str, demo_models: ModelSet) -> None:
    port = free_port()  # nothing listens here yet
    app = build(
        configure(redis_url=redis_url, r2_endpoint_url=f"http://127.0.0.1:{port}"), demo_models
    )
    result = run(app, {"image": DESK_B64}, "o1")
    assert result["persisted"] == {"record": True, "objects": False, "cache": "stored"}
    assert result["artifacts"]["annotated_url"] is None
    assert app.outbox.pending() == 2  # the original and the annotated image
    assert run(app, {"action": "health"}, "h")["stores"]["objects"]["ok"] is False

    server = S3Server(port=port)  # R2 is back
    try:
        app.stores.objects.client.create_bucket(Bucket=app.stores.objects.bucket)
        run(app, {"action": "health"}, "h2")  # the next job replays the outbox first
        assert app.outbox.pending() == 0
        assert object_keys(app) == sorted(
            [result["artifacts"]["original_key"], result["artifacts"]["annotated_key"]]
        )
        run(app, {"action": "health"}, "h3")  # nothing left to replay: still exactly once
        assert len(object_keys(app)) == 2
    finally:
        server.stop()


def test_mongo_raising_then_back(
    configure, redis_url: str, demo_models: ModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(configure(redis_url=redis_url), demo_models)
    analyses = app.stores.records.analyses

    def refuse(*args: object, **kwargs: object) -> None:
        raise ServerSelectionTimeoutError("no servers found")

    with monkeypatch.context() as patch:
        patch.setattr(analyses, "replace_one", refuse)
        result = run(app, {"image": DESK_B64}, "m1")
        assert result["persisted"] == {"record": False, "objects": True, "cache": "stored"}
        assert app.outbox.pending() == 1
        run(app, {"action": "health"}, "still-down")  # replay fails again: nothing lost
        assert app.outbox.pending() == 1
    run(app, {"action": "health"}, "back")
    assert app.outbox.pending() == 0
    assert analyses.count_documents({"_id": "m1"}) == 1
    assert app.stores.records.get_analysis("m1")["image"]["sha256"] == result["image"]["sha256"]


def test_stores_slowed_past_their_timeout(configure, demo_models: ModelSet) -> None:
    with blackhole() as port:
        settings = configure(
            redis_url=f"redis://127.0.0.1:{port}/0",
            r2_endpoint_url=f"http://127.0.0.1:{port}",
            store_timeout_s=0.5,
        )
        app = build(settings, demo_models)
        start = time.monotonic()
        result = run(app, {"image": DESK_B64}, "slow")
        elapsed = time.monotonic() - start
    assert result["persisted"] == {"record": True, "objects": False, "cache": "unavailable"}
    assert elapsed < 8  # one timeout per store per job, not one per call
    assert app.outbox.pending() == 2


def test_redis_by_host_and_port_gives_up_within_its_timeout(
    configure, demo_models: ModelSet
) -> None:
    with blackhole() as port:
        settings = configure(redis_host="127.0.0.1", redis_port=port, store_timeout_s=0.5)
        app = build(settings, demo_models)
        start = time.monotonic()
        result = run(app, {"image": DESK_B64}, "by-host")
        elapsed = time.monotonic() - start
    assert result["persisted"]["cache"] == "unavailable"
    assert elapsed < 5


def test_with_the_results_store_down_the_default_rules_still_judge(
    configure, redis_url: str, demo_models: ModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build(configure(redis_url=redis_url), demo_models)

    def refuse(*args: object, **kwargs: object) -> None:
        raise ServerSelectionTimeoutError("no servers found")

    monkeypatch.setattr(app.stores.records, "get_named", refuse)
    monkeypatch.setattr(app.stores.records.analyses, "replace_one", refuse)
    result = run(app, {"image": DESK_B64}, "default-rules")
    assert len(result["rules"]) == 0 or result["persisted"]["record"] is False
    assert result["persisted"]["record"] is False
    named = app.handle({"id": "n", "input": {"image": DESK_B64, "rule_set": "office"}})
    assert named["error"].startswith("internal_error: rule_set: the results store is not answering")


def test_fitness_fails_on_missing_models_but_not_on_a_store_that_is_down(
    configure, demo_models: ModelSet
) -> None:
    with blackhole() as port:
        app = build(
            configure(redis_url=f"redis://127.0.0.1:{port}/0", store_timeout_s=0.3), demo_models
        )
        app.check_fitness()  # a dead cache is logged, not fatal
    without_clip = ModelSet(
        device=demo_models.device,
        detector=demo_models.detector,
        problems={"clip": "CLIP weights not found"},
    )
    no_clip = Worker(app.settings, without_clip, app.stores)
    with pytest.raises(RuntimeError, match="CLIP weights not found"):
        no_clip.check_fitness()
    assert run(no_clip, {"action": "health"}, "h")["status"] == "degraded"


@pytest.fixture
def similar_app(make_worker) -> Iterator[Worker]:
    yield make_worker()


def test_find_similar_returns_near_duplicates_first(similar_app: Worker) -> None:
    desk = Image.open(ASSETS / "desk.jpg")
    others = {
        "noise": Image.effect_noise((960, 640), 60).convert("RGB"),
        "sky": Image.new("RGB", (800, 600), (90, 150, 230)),
        "stripes": Image.frombytes("L", (256, 256), bytes(range(256)) * 256).convert("RGB"),
    }
    run(similar_app, {"image": DESK_B64, "options": {"cache": False}}, "desk")
    for name, image in others.items():
        run(similar_app, {"image": encode_image(image), "options": {"cache": False}}, name)
    near_copy = ImageEnhance.Brightness(desk.resize((900, 600))).enhance(1.1)
    found = run(
        similar_app, {"action": "find_similar", "image": encode_image(near_copy), "limit": 3}, "q"
    )
    assert found["results"][0]["analysis_id"] == "desk"
    assert found["results"][0]["score"] > found["results"][1]["score"]
    by_id = run(similar_app, {"action": "find_similar", "analysis_id": "desk", "limit": 2}, "q2")
    assert "desk" not in [hit["analysis_id"] for hit in by_id["results"]]
    assert len(by_id["results"]) == 2


def test_stores_failing_under_concurrent_jobs_then_back_each_write_lands_once(
    configure, redis_url: str, demo_models: ModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC 9 with SPEC 5: MAX_CONCURRENCY 4, eight jobs at once while R2 is unreachable and
    MongoDB refuses writes; every write waits in the one outbox and lands once when they are back."""
    port = free_port()
    settings = configure(
        redis_url=redis_url, r2_endpoint_url=f"http://127.0.0.1:{port}", max_concurrency=4
    )
    app = build(settings, demo_models)
    analyses = app.stores.records.analyses
    runner = JobRunner(app)

    def refuse(*args: object, **kwargs: object) -> None:
        raise ServerSelectionTimeoutError("no servers found")

    async def together() -> list[dict[str, Any]]:
        body = {"image": DESK_B64, "options": {"cache": False}}
        jobs = ({"id": f"c{n}", "input": body} for n in range(8))
        return list(await asyncio.gather(*(runner.run(job) for job in jobs)))

    with monkeypatch.context() as patch:
        patch.setattr(analyses, "replace_one", refuse)
        outputs = asyncio.run(together())
    assert [o["persisted"]["record"] for o in outputs] == [False] * 8, outputs[0]
    assert all(o["persisted"]["objects"] is False for o in outputs)
    assert app.outbox.pending() == 8 * 3  # each job's record, original and annotated image

    server = S3Server(port=port)
    try:
        app.stores.objects.client.create_bucket(Bucket=app.stores.objects.bucket)
        run(app, {"action": "health"}, "back")
        assert app.outbox.pending() == 0
        assert [analyses.count_documents({"_id": f"c{n}"}) for n in range(8)] == [1] * 8
        annotated = sorted(o["artifacts"]["annotated_key"] for o in outputs)
        assert object_keys(app) == sorted([outputs[0]["artifacts"]["original_key"], *annotated])
    finally:
        server.stop()
