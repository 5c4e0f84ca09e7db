"""The results store on MongoDB (SPEC 5): analyses upserted by id, rule sets by name, find_similar.

Every call runs under the client's timeouts (server selection, connect, socket), so a server that is
down or slow costs at most ``STORE_TIMEOUT_S`` and then raises; the pipeline turns that into
``persisted.record: false`` and an outbox entry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import OperationFailure

from storage.base import NamedKind
from storage.history import (
    SEVERITIES,
    Cursor,
    GroupSums,
    HistoryQuery,
    finish_rows,
    summarize,
)
from storage.similarity import rank_by_cosine

log = logging.getLogger(__name__)

ANALYSES = "analyses"
INDEXES = (
    ([("image.sha256", ASCENDING)], "image_sha256"),
    ([("created_at", DESCENDING)], "created_at"),
    ([("metadata.$**", ASCENDING)], "metadata_wildcard"),
    # list_analyses pages newest first with ties by id; stats narrows by created_at first
    ([("created_at", DESCENDING), ("_id", DESCENDING)], "created_at_id"),
)
# what a history row needs of a record (never its detections or embedding)
SUMMARY_FIELDS = {
    "analysis_id": 1,
    "created_at": 1,
    "artifacts": 1,
    "metadata": 1,
    "positioning.compliant": 1,
    "positioning.safety_score": 1,
    "rules.rule_id": 1,
    "rules.status": 1,
    "rules.severity": 1,
    "cache_hit": 1,
}


def connect(uri: str, timeout_s: float) -> MongoClient[dict[str, Any]]:
    """A pooled client with bounded waits and retryable writes; it connects lazily."""
    timeout_ms = int(timeout_s * 1000)
    return MongoClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms,
        retryWrites=True,
        maxPoolSize=20,
        appname="mug-positioning-worker",
    )


class MongoRecordStore:
    backend = "mongodb"

    def __init__(
        self, client: MongoClient[dict[str, Any]], database: str, vector_index: str
    ) -> None:
        self.client = client
        self.db = client[database]
        self.analyses = self.db[ANALYSES]
        self.vector_index = vector_index

    def ensure_indexes(self) -> None:
        """Create the SPEC 5 indexes; creating an index that exists is a no-op."""
        for keys, name in INDEXES:
            self.analyses.create_index(keys, name=name)

    def put_analysis(self, record: dict[str, Any]) -> None:
        document = {**record, "_id": record["analysis_id"]}
        self.analyses.replace_one({"_id": document["_id"]}, document, upsert=True)

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None:
        return _plain(self.analyses.find_one({"_id": analysis_id}))

    def put_named(self, kind: NamedKind, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        stored = self.db[kind].find_one_and_update(
            {"_id": name},
            {
                "$set": {**fields, "name": name, "updated_at": datetime.now(UTC).isoformat()},
                "$inc": {"version": 1},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return _plain(stored) or {}

    def get_named(self, kind: NamedKind, name: str) -> dict[str, Any] | None:
        return _plain(self.db[kind].find_one({"_id": name}))

    def list_named(self, kind: NamedKind) -> list[dict[str, Any]]:
        return [_plain(doc) or {} for doc in self.db[kind].find({}).sort("name", ASCENDING)]

    def delete_named(self, kind: NamedKind, name: str) -> bool:
        return self.db[kind].delete_one({"_id": name}).deleted_count == 1

    def list_analyses(
        self, query: HistoryQuery, limit: int, after: Cursor | None = None
    ) -> list[dict[str, Any]]:
        selector = _selector(query)
        if after is not None:
            selector["$or"] = [
                {"created_at": {"$lt": after.created_at}},
                {"created_at": after.created_at, "_id": {"$lt": after.analysis_id}},
            ]
        cursor = (
            self.analyses.find(selector, SUMMARY_FIELDS)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [summarize(_plain(document) or {}) for document in cursor]

    def analysis_stats(self, query: HistoryQuery, group_by: str) -> list[dict[str, Any]]:
        """One aggregation: each analysis's failures within its group, then the groups' sums."""
        failed = {"$eq": ["$rules.status", "fail"]}
        per_analysis: dict[str, Any] = {
            "_id": {"analysis": "$_id", "key": _group_expression(group_by)},
            "failed": {"$sum": {"$cond": [failed, 1, 0]}},
            "safety": {"$first": "$positioning.safety_score"},
            **{
                severity: {
                    "$sum": {
                        "$cond": [{"$and": [failed, {"$eq": ["$rules.severity", severity]}]}, 1, 0]
                    }
                }
                for severity in SEVERITIES
            },
        }
        per_group: dict[str, Any] = {
            "_id": "$_id.key",
            "analyses": {"$sum": 1},
            "compliant": {"$sum": {"$cond": [{"$eq": ["$failed", 0]}, 1, 0]}},
            "violations": {"$sum": "$failed"},
            "safety_scores": {"$push": "$safety"},
            **{severity: {"$sum": f"${severity}"} for severity in SEVERITIES},
        }
        # by rule, an analysis counts once per rule it has results for; otherwise once, rules or not
        unwind = (
            "$rules"
            if group_by == "rule"
            else {"path": "$rules", "preserveNullAndEmptyArrays": True}
        )
        pipeline: list[dict[str, Any]] = [
            {"$match": _selector(query)},
            {"$project": {"created_at": 1, "metadata": 1, "positioning": 1, "rules": 1}},
            {"$unwind": unwind},
            {"$group": per_analysis},
            {"$group": per_group},
        ]
        groups = []
        for row in self.analyses.aggregate(pipeline):
            sums = GroupSums(
                analyses=row["analyses"],
                compliant=row["compliant"],
                violations=row["violations"],
                safety_scores=[float(score or 0.0) for score in row["safety_scores"]],
                by_severity={severity: row[severity] for severity in SEVERITIES},
            )
            groups.append((row["_id"], sums))
        return finish_rows(groups)

    def find_similar(
        self, embedding: list[float], limit: int, scan: int, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        """Atlas ``$vectorSearch`` where the index exists, else exact cosine over the newest ``scan``."""
        try:
            found = self._vector_search(embedding, limit, exclude)
            if found:  # Atlas answers an empty list, not an error, while the index is missing
                return found
        except OperationFailure as error:  # not Atlas: exact search instead
            log.debug("vector search unavailable (%s); using exact cosine", error)
        except (AttributeError, NotImplementedError):  # a client without aggregation stages
            pass
        cursor = (
            self.analyses.find(
                {"embedding": {"$exists": True, "$ne": None}},
                {"analysis_id": 1, "embedding": 1, "image": 1, "created_at": 1, "metadata": 1},
            )
            .sort("created_at", DESCENDING)
            .limit(scan)
        )
        return rank_by_cosine(embedding, (_plain(doc) or {} for doc in cursor), limit, exclude)

    def _vector_search(
        self, embedding: list[float], limit: int, exclude: str | None
    ) -> list[dict[str, Any]]:
        pipeline: list[dict[str, Any]] = [
            {
                "$vectorSearch": {
                    "index": self.vector_index,
                    "path": "embedding",
                    "queryVector": embedding,
                    "numCandidates": max(100, limit * 20),
                    "limit": limit + 1,
                }
            },
            {
                "$project": {
                    "analysis_id": 1,
                    "image": 1,
                    "created_at": 1,
                    "metadata": 1,
                    "score": {"$meta": "vectorSearchScore"},
                }
            },
        ]
        hits = [_plain(doc) or {} for doc in self.analyses.aggregate(pipeline)]
        # Atlas reports cosine similarity as (1 + cos) / 2; give the cosine like the exact path.
        results = [
            {**hit, "score": round(2 * float(hit["score"]) - 1, 6)}
            for hit in hits
            if hit.get("analysis_id") != exclude
        ]
        return results[:limit]

    def ping(self) -> bool:
        self.client.admin.command("ping")
        return True


def _selector(query: HistoryQuery) -> dict[str, Any]:
    """The query as a MongoDB filter (the created_at index narrows the range)."""
    selector: dict[str, Any] = {f"metadata.{key}": _equal(value) for key, value in query.metadata}
    window = {
        operator: bound
        for operator, bound in (("$gte", query.since), ("$lt", query.until))
        if bound is not None
    }
    if window:
        selector["created_at"] = window
    return selector


def _equal(value: Any) -> Any:
    """Equality as MongoDB means it, where a boolean is never a number. A real server already
    compares so (the type is then redundant); mongomock uses Python's ``True == 1``."""
    if isinstance(value, bool):
        return {"$eq": value, "$type": "bool"}
    if isinstance(value, int | float):
        return {"$eq": value, "$type": "number"}
    return value


def _group_expression(group_by: str) -> Any:
    if group_by == "rule":
        return "$rules.rule_id"
    if group_by == "day":
        # the UTC date: records keep created_at as ISO 8601 text in UTC
        return {"$substr": ["$created_at", 0, 10]}
    return f"${group_by}"


def _plain(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored document without Mongo's ``_id`` (the id is the analysis id or the set's name)."""
    if document is None:
        return None
    return {k: v for k, v in document.items() if k != "_id"}
