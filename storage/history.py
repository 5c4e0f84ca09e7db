"""Reading the analyses back (SPEC 11): the query, the rows and the cursor every results store shares.

A store narrows the records (time range, metadata filters) and adds up each group; what a row
*is* lives here once, so MongoDB's aggregation and the embedded store's loop cannot disagree:
``summarize`` makes a ``list_analyses`` row of a record, ``finish_rows`` makes ``stats`` rows of
the per-group sums, and ``matches`` / ``group_sums`` are the embedded store's reading of the same
filters MongoDB applies (MongoDB's equality: a list holds a value when one of its items is it,
``null`` matches a missing key, ``true`` is not ``1``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Scalar = str | int | float | bool | None
SEVERITIES = ("critical", "warning", "info")
METADATA_PREFIX = "metadata."


@dataclass(frozen=True)
class HistoryQuery:
    """Which analyses: ``since`` <= created_at < ``until`` (ISO 8601 in UTC, as records keep it),
    and each ``metadata`` key equal to its value."""

    since: str | None = None
    until: str | None = None
    metadata: tuple[tuple[str, Scalar], ...] = ()


@dataclass(frozen=True)
class Cursor:
    """Where a page of ``list_analyses`` ended: the last row's time and id (newest first, ties by
    id), so the next page starts after it however many records arrive meanwhile."""

    created_at: str
    analysis_id: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at, self.analysis_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            padded = text + "=" * (-len(text) % 4)
            created_at, analysis_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise ValueError("not a cursor from list_analyses") from None
        if not (isinstance(created_at, str) and isinstance(analysis_id, str)):
            raise ValueError("not a cursor from list_analyses")
        return cls(created_at, analysis_id)

    def is_after(self, created_at: str, analysis_id: str) -> bool:
        """Whether a record comes after this cursor in newest-first order."""
        return (created_at, analysis_id) < (self.created_at, self.analysis_id)


@dataclass
class GroupSums:
    """What one group adds up to before it becomes a row."""

    analyses: int = 0
    compliant: int = 0
    violations: int = 0
    # every score, not a running sum: math.fsum of them is exact whatever their order, so each
    # store's mean is the same to the last digit (a running sum is not, and rounding shows it)
    safety_scores: list[float] = field(default_factory=list)
    by_severity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))

    def add(self, failures: list[str], safety_score: float) -> None:
        """One analysis in the group, with the severities of its failed results in the group."""
        self.analyses += 1
        self.compliant += not failures
        self.violations += len(failures)
        self.safety_scores.append(safety_score)
        for severity in failures:
            self.by_severity[severity] = self.by_severity.get(severity, 0) + 1


def summarize(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``list_analyses`` row: what a history view needs of one record, without its detections
    or embedding. ``annotated_url`` is signed by the caller when it is read (URLs expire)."""
    positioning = record.get("positioning") or {}
    artifacts = record.get("artifacts") or {}
    failed: list[str] = []
    for result in record.get("rules") or []:
        if result.get("status") == "fail" and result.get("rule_id") not in failed:
            failed.append(result.get("rule_id"))
    return {
        "analysis_id": record["analysis_id"],
        "created_at": record.get("created_at"),
        "image_key": artifacts.get("original_key"),
        "annotated_key": artifacts.get("annotated_key"),
        "metadata": record.get("metadata") or {},
        "compliant": bool(positioning.get("compliant", not failed)),
        "safety_score": positioning.get("safety_score"),
        "failed_rules": failed,
        "cache_hit": bool(record.get("cache_hit", False)),
    }


def rule_outcomes(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rule results a record's statistics need (id, status, severity), nothing else."""
    return [
        {key: result.get(key) for key in ("rule_id", "status", "severity")}
        for result in record.get("rules") or []
    ]


def _same(stored: Any, wanted: Scalar) -> bool:
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return type(stored) is type(wanted) and stored == wanted
    return bool(stored == wanted)


def _holds(stored: Any, wanted: Scalar) -> bool:
    """MongoDB's equality on a field: a list also matches when one of its items does."""
    if isinstance(stored, list):
        return _same(stored, wanted) or any(_same(item, wanted) for item in stored)
    return _same(stored, wanted)


def matches(created_at: str, metadata: Mapping[str, Any], query: HistoryQuery) -> bool:
    """Whether a record of that time and metadata is one the query asks for."""
    if query.since is not None and created_at < query.since:
        return False
    if query.until is not None and created_at >= query.until:
        return False
    return all(_holds(metadata.get(key), value) for key, value in query.metadata)


def group_key(group_by: str, created_at: str, metadata: Mapping[str, Any]) -> Any:
    """The group of a record for ``day`` or ``metadata.<key>`` (``rule`` groups its results)."""
    if group_by == "day":
        return created_at[:10]
    return metadata.get(group_by.removeprefix(METADATA_PREFIX))


def group_sums(
    records: Iterable[tuple[str, Mapping[str, Any], list[dict[str, Any]], float]], group_by: str
) -> list[tuple[Any, GroupSums]]:
    """The groups of ``(created_at, metadata, rule outcomes, safety score)`` records, each with its
    sums. By rule, an analysis counts in each rule's group it has results for, compliant there
    when none of that rule's results failed."""
    groups: dict[str, tuple[Any, GroupSums]] = {}

    def group(key: Any) -> GroupSums:
        label = json.dumps(key, sort_keys=True)
        if label not in groups:
            groups[label] = (key, GroupSums())
        return groups[label][1]

    for created_at, metadata, outcomes, safety in records:
        if group_by == "rule":
            failures_by_rule: dict[str, list[str]] = {}
            for outcome in outcomes:
                failures = failures_by_rule.setdefault(outcome["rule_id"], [])
                if outcome["status"] == "fail":
                    failures.append(outcome["severity"])
            for rule_id, failures in failures_by_rule.items():
                group(rule_id).add(failures, safety)
        else:
            failures = [o["severity"] for o in outcomes if o["status"] == "fail"]
            group(group_key(group_by, created_at, metadata)).add(failures, safety)
    return list(groups.values())


def _order(key: Any) -> tuple[int, Any]:
    """Rows in key order across kinds of key: null, booleans, numbers, text, anything else."""
    if key is None:
        return (0, 0)
    if isinstance(key, bool):
        return (1, key)
    if isinstance(key, int | float):
        return (2, key)
    if isinstance(key, str):
        return (3, key)
    return (4, json.dumps(key, sort_keys=True))


def finish_rows(groups: Iterable[tuple[Any, GroupSums]]) -> list[dict[str, Any]]:
    """The ``stats`` rows of SPEC 11, in key order."""
    rows = [
        {
            "key": key,
            "analyses": sums.analyses,
            "compliant": sums.compliant,
            "violations": sums.violations,
            "by_severity": {severity: sums.by_severity.get(severity, 0) for severity in SEVERITIES},
            "mean_safety_score": round(math.fsum(sums.safety_scores) / sums.analyses, 4)
            if sums.analyses
            else None,
        }
        for key, sums in groups
    ]
    return sorted(rows, key=lambda row: _order(row["key"]))
