"""Reading analyses back (SPEC 11): ``stats`` and ``list_analyses`` give the same rows from MongoDB
(mongomock, or a real server with MONGODB_TEST_URI) and from the embedded store."""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.bench_history import DESKS, history_record
from storage import mongo
from storage.embedded import HISTORY_INDEX, JsonRecordStore
from storage.history import Cursor, HistoryQuery
from worker.schemas import ListAnalysesInput, StatsInput


def make_record(rng: random.Random, number: int) -> dict[str, Any]:
    return history_record(rng, number, embedding_size=8)


@pytest.fixture
def mongo_records(mongo_uri: str, mongo_db: str) -> Iterator[mongo.MongoRecordStore]:
    store = mongo.MongoRecordStore(mongo.connect(mongo_uri, 5), mongo_db, "embedding_index")
    store.ensure_indexes()
    yield store
    store.client.drop_database(mongo_db)


@pytest.fixture
def both(
    mongo_records: mongo.MongoRecordStore, tmp_path: Path
) -> tuple[mongo.MongoRecordStore, JsonRecordStore]:
    rng = random.Random(20261203)
    embedded = JsonRecordStore(tmp_path / "data")
    for number in range(240):
        record = make_record(rng, number)
        mongo_records.put_analysis(record)
        embedded.put_analysis(record)
    return mongo_records, embedded


QUERIES = [
    {},
    {"since": "2026-11-10", "until": "2026-11-20"},
    {"filter": {"metadata.desk": "A1"}},
    {"filter": {"metadata.desk": None}},  # no desk: MongoDB's null matches a missing key
    {"filter": {"metadata.floor": 1}},  # a list holding 1 matches too
    {"filter": {"metadata.floor": True}},  # a boolean is not the number 1 (mongomock thinks so)
    {"filter": {"metadata.desk": "B2", "metadata.camera": "cam-1"}, "since": "2026-11-05T12:00"},
    {"until": "2026-11-15T00:00:00+01:00"},  # another zone: compared in UTC
]


@pytest.mark.parametrize("group_by", ["day", "rule", "metadata.desk", "metadata.floor"])
@pytest.mark.parametrize("filters", QUERIES)
def test_stats_are_the_same_from_mongodb_and_the_embedded_store(
    both: tuple[mongo.MongoRecordStore, JsonRecordStore], group_by: str, filters: dict[str, Any]
) -> None:
    query = StatsInput.model_validate({"action": "stats", "group_by": group_by, **filters})
    from_mongo, from_files = (store.analysis_stats(query.query(), group_by) for store in both)
    assert from_mongo == from_files
    if not filters:
        assert sum(row["analyses"] for row in from_files) >= (200 if group_by != "rule" else 0)


@pytest.mark.parametrize("filters", QUERIES)
def test_list_pages_are_the_same_and_walk_every_record_once_newest_first(
    both: tuple[mongo.MongoRecordStore, JsonRecordStore], filters: dict[str, Any]
) -> None:
    query = ListAnalysesInput.model_validate({"action": "list_analyses", **filters}).query()
    pages: dict[str, list[dict[str, Any]]] = {}
    for store in both:
        walked: list[dict[str, Any]] = []
        after = None
        while True:
            page = store.list_analyses(query, 37, after)
            walked += page
            if len(page) < 37:
                break
            after = Cursor(page[-1]["created_at"], page[-1]["analysis_id"])
        pages[store.backend] = walked
    assert pages["mongodb"] == pages["json"]
    order = [(row["created_at"], row["analysis_id"]) for row in pages["json"]]
    assert order == sorted(order, reverse=True)
    assert len({row["analysis_id"] for row in pages["json"]}) == len(order)
    everything = pages["json"] if not filters else None
    if everything is not None:
        assert len(everything) == 240


def test_stats_rows_count_what_the_records_say(tmp_path: Path) -> None:
    store = JsonRecordStore(tmp_path)

    def result(rule_id: str, status: str, severity: str) -> dict[str, str]:
        return {"rule_id": rule_id, "status": status, "severity": severity}

    day = "2026-11-02T09:00:00+00:00"
    store.put_analysis(
        {
            "analysis_id": "a",
            "created_at": day,
            "metadata": {"desk": "A1"},
            "positioning": {"compliant": False, "safety_score": 0.25},
            "rules": [
                result("edge", "fail", "critical"),
                result("edge", "fail", "critical"),  # two mugs too near the edge
                result("laptop", "pass", "warning"),
            ],
        }
    )
    store.put_analysis(
        {
            "analysis_id": "b",
            "created_at": "2026-11-02T17:00:00+00:00",
            "metadata": {"desk": "A1"},
            "positioning": {"compliant": False, "safety_score": 0.75},
            "rules": [result("edge", "pass", "critical"), result("laptop", "fail", "warning")],
        }
    )
    store.put_analysis(
        {
            "analysis_id": "c",
            "created_at": "2026-11-03T08:00:00+00:00",
            "metadata": {},
            "positioning": {"compliant": True, "safety_score": 1.0},
            "rules": [],
        }
    )
    everything = HistoryQuery()
    assert store.analysis_stats(everything, "rule") == [
        {
            "key": "edge",
            "analyses": 2,
            "compliant": 1,
            "violations": 2,
            "by_severity": {"critical": 2, "warning": 0, "info": 0},
            "mean_safety_score": 0.5,
        },
        {
            "key": "laptop",
            "analyses": 2,
            "compliant": 1,
            "violations": 1,
            "by_severity": {"critical": 0, "warning": 1, "info": 0},
            "mean_safety_score": 0.5,
        },
    ]
    by_desk = store.analysis_stats(everything, "metadata.desk")
    assert [(row["key"], row["analyses"], row["compliant"]) for row in by_desk] == [
        (None, 1, 1),
        ("A1", 2, 0),
    ]
    by_day = store.analysis_stats(everything, "day")
    assert [(row["key"], row["violations"]) for row in by_day] == [
        ("2026-11-02", 3),
        ("2026-11-03", 0),
    ]
    assert store.list_analyses(everything, 10)[0]["failed_rules"] == []
    assert store.list_analyses(everything, 10)[2]["failed_rules"] == ["edge"]


def test_the_embedded_index_catches_up_with_record_files_it_never_saw(tmp_path: Path) -> None:
    """Records written by an earlier version (no index), copied in, or deleted by hand."""
    rng = random.Random(7)
    first = JsonRecordStore(tmp_path)
    for number in range(5):
        first.put_analysis(make_record(rng, number))
    (tmp_path / HISTORY_INDEX).unlink()
    copied = make_record(rng, 99)
    (tmp_path / "analyses" / "job-00099.json").write_text(json.dumps(copied))
    (tmp_path / "analyses" / "torn.json").write_text('{"analysis_id": ')
    (tmp_path / "analyses" / "job-00001.json").unlink()
    reopened = JsonRecordStore(tmp_path)
    listed = {row["analysis_id"] for row in reopened.list_analyses(HistoryQuery(), 50)}
    assert listed == {"job-00000", "job-00002", "job-00003", "job-00004", "job-00099"}


record_sets = st.lists(st.integers(0, 10_000), min_size=0, max_size=25, unique=True)
history_queries = st.fixed_dictionaries(
    {},
    optional={
        "since": st.sampled_from(["2026-11-03", "2026-11-12T06:30", "2026-11-29"]),
        "filter": st.dictionaries(
            st.sampled_from(["metadata.desk", "metadata.camera", "metadata.floor"]),
            st.sampled_from([*DESKS, "cam-1", 1, 2, None, True]),
            max_size=2,
        ),
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    numbers=record_sets,
    filters=history_queries,
    group_by=st.sampled_from(["day", "rule", "metadata.desk", "metadata.floor", "metadata.batch"]),
    seed=st.integers(0, 2**16),
)
def test_any_records_and_query_give_the_same_rows_from_both_stores(
    mongo_records: mongo.MongoRecordStore,
    numbers: list[int],
    filters: dict[str, Any],
    group_by: str,
    seed: int,
) -> None:
    mongo_records.analyses.delete_many({})
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        embedded = JsonRecordStore(Path(folder))
        for number in numbers:
            record = make_record(rng, number)
            mongo_records.put_analysis(record)
            embedded.put_analysis(record)
        request = StatsInput.model_validate({"action": "stats", "group_by": group_by, **filters})
        query = request.query()
        assert mongo_records.analysis_stats(query, group_by) == embedded.analysis_stats(
            query, group_by
        )
        assert mongo_records.list_analyses(query, 10) == embedded.list_analyses(query, 10)


# ---------------------------------------------------------------- the actions


def run(app: Any, payload: dict[str, Any], job_id: str = "job") -> dict[str, Any]:
    output: dict[str, Any] = app.handle({"id": job_id, "input": payload})
    json.dumps(output, allow_nan=False)
    return output


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"action": "stats", "group_by": "desk"}, "invalid_input: group_by: String should match"),
        ({"action": "stats", "group_by": "metadata.a.b"}, "invalid_input: group_by:"),
        ({"action": "stats", "since": "yesterday"}, "invalid_input: since: expected an ISO 8601"),
        (
            {"action": "stats", "since": "2026-12-02", "until": "2026-12-01"},
            "invalid_input: since: must be before until",
        ),
        (
            {"action": "stats", "filter": {"desk": "A1"}},
            "invalid_input: filter: keys are 'metadata.<key>'",
        ),
        (
            {"action": "stats", "filter": {"metadata.$where": "1"}},
            "invalid_input: filter: keys are 'metadata.<key>'",
        ),
        (
            {"action": "stats", "filter": {"metadata.desk": {"$ne": "A1"}}},
            "invalid_input: filter.metadata.desk",
        ),
        ({"action": "list_analyses", "limit": 201}, "invalid_input: limit:"),
        ({"action": "list_analyses", "cursor": "not-a-cursor"}, "invalid_input: cursor:"),
        ({"action": "list_analyses", "page": 2}, "invalid_input: page: unknown key"),
    ],
)
def test_bad_history_requests_say_which_field(
    make_worker: Any, payload: dict[str, Any], expected: str
) -> None:
    from models.runtime import Device
    from worker.runtime import ModelSet

    app = make_worker(ModelSet(device=Device(name="cpu", half=False, threads=1)))
    assert run(app, payload)["error"].startswith(expected)


def test_analyze_jobs_are_listed_and_counted(app: Any, desk_b64: str) -> None:
    rules = ["mugs at least 40 cm from the laptop (critical)", "mugs 1 cm from the table edge"]
    for number, desk in enumerate(["A1", "A1", "B2"]):
        result = run(
            app,
            {
                "image": desk_b64,
                "rules": rules,
                "metadata": {"desk": desk},
                "options": {"cache": False},
            },
            job_id=f"job-{number}",
        )
        assert "error" not in result, result
    listed = run(app, {"action": "list_analyses", "limit": 2})
    assert [row["analysis_id"] for row in listed["analyses"]] == ["job-2", "job-1"]
    assert listed["analyses"][0]["annotated_url"].endswith("annotated/job-2.jpg")
    rest = run(app, {"action": "list_analyses", "limit": 2, "cursor": listed["next_cursor"]})
    assert [row["analysis_id"] for row in rest["analyses"]] == ["job-0"]
    assert rest["next_cursor"] is None
    one_desk = run(app, {"action": "list_analyses", "filter": {"metadata.desk": "B2"}})
    assert [row["analysis_id"] for row in one_desk["analyses"]] == ["job-2"]
    stats = run(app, {"action": "stats", "group_by": "metadata.desk"})
    assert [(row["key"], row["analyses"]) for row in stats["rows"]] == [("A1", 2), ("B2", 1)]
    stored = app.stores.records.get_analysis("job-0")
    failed = sorted({r["rule_id"] for r in stored["rules"] if r["status"] == "fail"})
    assert sorted(listed["analyses"][1]["failed_rules"]) == failed
    by_rule = run(app, {"action": "stats", "group_by": "rule", "until": "2999-01-01"})
    assert {row["key"] for row in by_rule["rows"]} == {r["rule_id"] for r in stored["rules"]}
