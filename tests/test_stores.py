"""Each store backend against its server: MongoDB (mongomock, or real with MONGODB_TEST_URI),
S3 (moto's server on loopback) and Redis (redis-server on loopback); and the outbox."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage import mongo, redis_cache, s3
from storage.base import ObjectNotFound
from storage.embedded import JsonRecordStore, LocalObjectStore
from storage.outbox import Outbox


@pytest.fixture
def records(mongo_uri: str, mongo_db: str) -> Iterator[mongo.MongoRecordStore]:
    store = mongo.MongoRecordStore(mongo.connect(mongo_uri, 5), mongo_db, "embedding_index")
    store.ensure_indexes()
    yield store
    store.client.drop_database(mongo_db)


@pytest.fixture
def objects(s3_server, s3_bucket: str) -> s3.S3ObjectStore:
    client = s3.connect(s3_server.url, "test", "test", "auto", 5)
    return s3.S3ObjectStore(client, s3_bucket, presign_ttl_s=600)


@pytest.fixture
def cache(redis_url: str) -> redis_cache.RedisResultCache:
    client = redis_cache.connect(redis_url, None, 6379, None, 2)
    return redis_cache.RedisResultCache(client, ttl_s=120, max_entry_bytes=4096)


def record(analysis_id: str, embedding: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "analysis_id": analysis_id,
        "image": {"sha256": analysis_id * 4},
        "created_at": f"2026-11-29T10:00:{len(analysis_id):02d}+00:00",
        "metadata": {"desk": "A7"},
        "embedding": embedding,
        **extra,
    }


# ---------------------------------------------------------------- MongoDB


def test_mongo_upserts_by_analysis_id(records: mongo.MongoRecordStore) -> None:
    records.put_analysis(record("a1", n=1))
    records.put_analysis(record("a1", n=2))  # a retried job
    assert records.analyses.count_documents({}) == 1
    assert records.get_analysis("a1")["n"] == 2
    assert "_id" not in records.get_analysis("a1")
    assert records.get_analysis("missing") is None


def test_mongo_indexes_are_created_once(records: mongo.MongoRecordStore) -> None:
    records.ensure_indexes()
    names = set(records.analyses.index_information())
    assert {"image_sha256", "created_at", "metadata_wildcard"} <= names


def test_mongo_rule_sets_bump_their_version(records: mongo.MongoRecordStore) -> None:
    first = records.put_named(
        "rule_sets", "desk", {"description": "first", "rules": [{"type": "count", "max": 1}]}
    )
    second = records.put_named(
        "rule_sets", "desk", {"description": "second", "rules": [{"type": "count", "max": 2}]}
    )
    assert (first["version"], second["version"]) == (1, 2)
    assert records.get_named("rule_sets", "desk")["description"] == "second"
    records.put_named("rule_sets", "kitchen", {"description": "", "rules": []})
    assert [s["name"] for s in records.list_named("rule_sets")] == ["desk", "kitchen"]
    assert records.list_named("cameras") == []  # each kind apart
    assert records.delete_named("rule_sets", "desk") is True
    assert records.delete_named("rule_sets", "desk") is False
    assert records.get_named("rule_sets", "desk") is None


def test_mongo_find_similar_ranks_by_cosine(records: mongo.MongoRecordStore) -> None:
    records.put_analysis(record("far", [0.0, 1.0, 0.0]))
    records.put_analysis(record("near", [0.9, 0.1, 0.0]))
    records.put_analysis(record("query", [1.0, 0.0, 0.0]))
    records.put_analysis(record("none", None))
    found = records.find_similar([1.0, 0.0, 0.0], limit=5, scan=100, exclude="query")
    assert [hit["analysis_id"] for hit in found] == ["near", "far"]
    assert found[0]["score"] == pytest.approx(0.9 / (0.82**0.5), abs=1e-5)
    assert found[0]["metadata"] == {"desk": "A7"}


def test_mongo_down_fails_fast() -> None:
    store = mongo.MongoRecordStore(mongo.connect("mongodb://127.0.0.1:9", 0.5), "x", "i")
    start = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timeout|refused|timed out"):
        store.put_analysis(record("a"))
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------- S3 / R2


def test_s3_put_get_exists_and_a_presigned_url(objects: s3.S3ObjectStore) -> None:
    objects.put("originals/ab/abc.jpg", b"\xff\xd8bytes", "image/jpeg")
    assert objects.exists("originals/ab/abc.jpg")
    assert not objects.exists("originals/ab/other.jpg")
    assert objects.get("originals/ab/abc.jpg") == b"\xff\xd8bytes"
    url = objects.url("originals/ab/abc.jpg")
    assert "X-Amz-Signature" in url and "X-Amz-Expires=600" in url
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback: moto's server
        assert response.read() == b"\xff\xd8bytes"
    with pytest.raises(ObjectNotFound):
        objects.get("originals/none.jpg")
    assert objects.ping() is True


def test_s3_missing_bucket_fails_the_ping(s3_server) -> None:
    client = s3.connect(s3_server.url, "test", "test", "auto", 5)
    with pytest.raises(Exception, match=r"404|Not Found|NoSuchBucket"):
        s3.S3ObjectStore(client, "no-such-bucket", 60).ping()


# ---------------------------------------------------------------- Redis


def test_redis_cache_round_trip_with_ttl(cache: redis_cache.RedisResultCache) -> None:
    assert cache.get("k") is None
    assert cache.set("k", {"a": [1, 2.5, None]}) is True
    assert cache.get("k") == {"a": [1, 2.5, None]}
    assert 0 < cache.client.ttl(redis_cache.PREFIX + "k") <= 120
    assert cache.ping() is True


def test_redis_cache_skips_entries_over_the_size_cap(cache: redis_cache.RedisResultCache) -> None:
    assert cache.set("big", {"blob": "x" * 5000}) is False
    assert cache.get("big") is None


# ---------------------------------------------------------------- outbox


class Flaky:
    """A store that fails while ``down`` is set, and counts what it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = True
        self.calls = 0

    def ping(self) -> bool:
        return not self.down

    def put_analysis(self, record: dict[str, Any]) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")
        self.inner.put_analysis(record)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("store down")
        self.inner.put(key, data, content_type)


def test_outbox_replays_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    records = Flaky(JsonRecordStore(tmp_path / "records"))
    objects = Flaky(LocalObjectStore(tmp_path / "objects"))
    outbox = Outbox(tmp_path / "outbox")
    outbox.add_record(record("r1", n=1))
    outbox.add_object("annotated/r1.jpg", b"jpeg", "image/jpeg")
    outbox.add_record(record("r1", n=2))  # a later write of the same id must win
    assert outbox.pending() == 3
    assert outbox.replay(records, objects) == (0, "records")
    records.down = False
    assert outbox.replay(records, objects) == (1, "objects")  # stops, keeps the order
    assert outbox.pending() == 2
    objects.down = False
    assert outbox.replay(records, objects) == (2, None)
    assert outbox.pending() == 0
    assert records.inner.get_analysis("r1")["n"] == 2
    assert objects.inner.get("annotated/r1.jpg") == b"jpeg"
    with sqlite3.connect(tmp_path / "outbox" / "outbox.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)  # bytes gone too


def test_a_store_that_is_down_never_sets_an_entry_aside(tmp_path: Path) -> None:
    records = Flaky(JsonRecordStore(tmp_path / "records"))
    outbox = Outbox(tmp_path / "outbox")
    outbox.add_record(record("r1"))
    for _ in range(12):
        assert outbox.replay(records, LocalObjectStore(tmp_path / "objects")) == (0, "records")
    records.down = False
    assert outbox.replay(records, LocalObjectStore(tmp_path / "objects")) == (1, None)
    assert outbox.dead_entries() == []


def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    Outbox(tmp_path / "outbox").add_record(record("r9"))
    records = JsonRecordStore(tmp_path / "records")
    again = Outbox(tmp_path / "outbox")
    assert again.pending() == 1
    again.replay(records, LocalObjectStore(tmp_path / "objects"))
    assert records.get_analysis("r9") is not None


def test_the_vector_index_definition_matches_what_find_similar_queries() -> None:
    from scripts.create_vector_index import index_model

    document = index_model("embedding_index", 512).document
    assert document["name"] == "embedding_index" and document["type"] == "vectorSearch"
    (vector, _) = document["definition"]["fields"]
    assert vector == {
        "type": "vector",
        "path": "embedding",
        "numDimensions": 512,
        "similarity": "cosine",
    }


def test_secrets_stay_out_of_settings_logs_and_results(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:
    from models.runtime import Device
    from worker.actions import Worker
    from worker.runtime import ModelSet, open_stores

    secrets = ("s3cr3t-key-value", "m0ng0-pass", "r3dis-pass")
    settings = make_settings(
        r2_endpoint_url="http://127.0.0.1:9",
        r2_access_key_id="AKIDEXAMPLE",
        r2_secret_access_key=secrets[0],
        r2_bucket="bucket",
        mongodb_uri=f"mongodb://user:{secrets[1]}@127.0.0.1:9/?authSource=admin",
        redis_url=f"redis://:{secrets[2]}@127.0.0.1:9/0",
        store_timeout_s=0.3,
    )
    assert not any(secret in repr(settings) for secret in secrets)
    app = Worker(settings, ModelSet(device=Device("cpu", False, 1)), open_stores(settings))
    with caplog.at_level("DEBUG"):
        outputs = [
            app.handle({"id": "h", "input": {"action": "health"}}),
            app.handle(
                {
                    "id": "p",
                    "input": {"action": "put_rule_set", "name": "x", "rules": ["At most 2 mugs"]},
                }
            ),
            app.handle({"id": "e", "input": {"action": "evaluate", "analysis_id": "nope"}}),
        ]
    text = caplog.text + json.dumps(outputs)
    assert outputs[0]["status"] == "degraded"
    assert not any(secret in text for secret in secrets)


def test_a_torn_outbox_line_is_set_aside_and_the_rest_replayed(tmp_path: Path) -> None:
    """An outbox of the earlier JSON-lines format, torn by a crash, is taken over on start."""
    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "entries.jsonl").write_text(
        json.dumps({"kind": "record", "record": record("r1")})
        + "\n"
        + '{"kind": "record", "rec'  # a crash in the middle of an append
        + "\n"
        + json.dumps({"kind": "record", "record": record("r2")})
        + "\n"
    )
    (folder / "replayed").write_text("")  # and a progress file left empty
    outbox = Outbox(folder)
    records = JsonRecordStore(tmp_path / "records")
    assert outbox.replay(records, LocalObjectStore(tmp_path / "objects")) == (2, None)
    assert records.get_analysis("r1") and records.get_analysis("r2")
    (torn,) = outbox.dead_entries()
    assert torn["reason"].startswith("an unreadable entry of the earlier outbox (JSONDecodeError")
    assert not (folder / "entries.jsonl").exists()


def test_an_entry_its_store_keeps_refusing_is_set_aside_after_a_few_tries(tmp_path: Path) -> None:
    class Picky(JsonRecordStore):
        def put_analysis(self, record: dict[str, Any]) -> None:
            if record["analysis_id"] == "poison":
                raise ValueError("MongoDB can only handle up to 8-byte ints")
            super().put_analysis(record)

    outbox = Outbox(tmp_path / "outbox")
    outbox.add_record(record("poison"))
    outbox.add_record(record("fine"))
    records = Picky(tmp_path / "records")
    objects = LocalObjectStore(tmp_path / "objects")
    results = [outbox.replay(records, objects) for _ in range(5)]
    assert results[:4] == [(0, "records")] * 4
    assert results[4] == (1, None)  # the store answers pings: it is the entry that is refused
    assert records.get_analysis("fine") is not None
    assert outbox.pending() == 0
    (dead,) = outbox.dead_entries()
    assert dead["key"] == "poison" and "refused it 5 times (ValueError)" in dead["reason"]


def test_an_object_over_the_limit_is_refused_before_it_is_read(
    objects: s3.S3ObjectStore, tmp_path: Path
) -> None:
    from storage.base import ObjectTooLarge

    objects.put("big.jpg", b"x" * 5000, "image/jpeg")
    with pytest.raises(ObjectTooLarge) as raised:
        objects.get("big.jpg", max_bytes=1000)
    assert raised.value.size == 5000
    assert objects.get("big.jpg", max_bytes=5000) == b"x" * 5000
    local = LocalObjectStore(tmp_path)
    local.put("big.jpg", b"x" * 5000, "image/jpeg")
    with pytest.raises(ObjectTooLarge):
        local.get("big.jpg", max_bytes=10)
