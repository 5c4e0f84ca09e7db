"""The embedded defaults of SPEC 6: JSON files, a local objects folder and an in-process LRU cache."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from storage.base import NAMED_KINDS, NamedKind, ObjectNotFound, ObjectTooLarge
from storage.history import (
    Cursor,
    HistoryQuery,
    finish_rows,
    group_sums,
    matches,
    rule_outcomes,
    summarize,
)
from storage.keys import BadObjectKey, check_object_key, short_name
from storage.similarity import rank_by_cosine

MAX_NAME_BYTES = 255  # a file name, on every common file system
HISTORY_INDEX = "history.sqlite3"
_HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    file TEXT PRIMARY KEY,
    analysis_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    outcomes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS newest_first ON summaries (created_at DESC, analysis_id DESC);
"""


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _file_name(identifier: str) -> str:
    """A file name for any id: percent-encoded, dots too, so no id can name another folder; a
    long one shortened (the encoding can triple an id's length past the 255-byte name limit)."""
    return short_name(quote(identifier, safe="").replace(".", "%2E")) + ".json"


class JsonRecordStore:
    """Analyses as ``DATA_DIR/analyses/<id>.json``, rule sets and camera profiles as
    ``DATA_DIR/<kind>/<name>.json``; writing an id or name again replaces its file.

    History queries (SPEC 11) read an index beside the files (``DATA_DIR/history.sqlite3``: each
    record's summary, newest first), not the files themselves: 10,000 records of ~30 kB each would
    take seconds to parse. The files stay the truth: the index is brought level with them (records
    written by an earlier version, copied in or deleted) before every query.
    """

    backend = "json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index_lock = threading.Lock()
        self._index: sqlite3.Connection | None = None
        # a read-only or full disk must not stop the worker: writes fail (and wait in the
        # outbox) until it takes them again; each write makes its folder
        with suppress(OSError):
            for folder in ("analyses", *NAMED_KINDS):
                (root / folder).mkdir(parents=True, exist_ok=True)

    def put_analysis(self, record: dict[str, Any]) -> None:
        path = self.root / "analyses" / _file_name(record["analysis_id"])
        _write_atomically(path, json.dumps(record, allow_nan=False, sort_keys=True).encode())
        with self._index_lock:
            self._index_record(self._history(), path.name, record)

    def list_analyses(
        self, query: HistoryQuery, limit: int, after: Cursor | None = None
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for summary, _ in self._select(query, after):
            rows.append(summary)
            if len(rows) >= limit:
                break
        return rows

    def analysis_stats(self, query: HistoryQuery, group_by: str) -> list[dict[str, Any]]:
        selected = (
            (summary["created_at"], summary["metadata"], outcomes, summary["safety_score"] or 0.0)
            for summary, outcomes in self._select(query, None)
        )
        return finish_rows(group_sums(selected, group_by))

    def _select(
        self, query: HistoryQuery, after: Cursor | None
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """The summaries and rule outcomes of the records the query asks for, newest first."""
        clauses, values = ["1"], []
        if query.since is not None:
            clauses.append("created_at >= ?")
            values.append(query.since)
        if query.until is not None:
            clauses.append("created_at < ?")
            values.append(query.until)
        if after is not None:
            clauses.append("(created_at < ? OR (created_at = ? AND analysis_id < ?))")
            values += [after.created_at, after.created_at, after.analysis_id]
        with self._index_lock:
            index = self._history()
            self._catch_up(index)
            found = index.execute(
                "SELECT summary, outcomes FROM summaries WHERE "
                + " AND ".join(clauses)
                + " ORDER BY created_at DESC, analysis_id DESC",
                values,
            ).fetchall()
        for summary_text, outcomes_text in found:
            summary = json.loads(summary_text)
            if matches(summary["created_at"], summary["metadata"], query):
                yield summary, json.loads(outcomes_text)

    def _history(self) -> sqlite3.Connection:
        if self._index is None:
            index = sqlite3.connect(
                self.root / HISTORY_INDEX, timeout=5, isolation_level=None, check_same_thread=False
            )
            index.execute("PRAGMA journal_mode=WAL")
            index.execute("PRAGMA synchronous=NORMAL")  # it can always be rebuilt from the files
            index.executescript(_HISTORY_SCHEMA)
            self._index = index
        return self._index

    @staticmethod
    def _index_record(index: sqlite3.Connection, file: str, record: dict[str, Any]) -> None:
        summary = summarize(record)
        index.execute(
            "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?, ?)",
            (
                file,
                summary["analysis_id"],
                summary["created_at"] or "",
                json.dumps(summary, allow_nan=False),
                json.dumps(rule_outcomes(record), allow_nan=False),
            ),
        )

    def _catch_up(self, index: sqlite3.Connection) -> None:
        """Index the record files the index does not know, and forget those that are gone."""
        on_disk = {entry.name for entry in os.scandir(self.root / "analyses")}
        on_disk = {name for name in on_disk if name.endswith(".json")}
        indexed = {name for (name,) in index.execute("SELECT file FROM summaries")}
        if on_disk == indexed:
            return
        index.execute("BEGIN IMMEDIATE")
        try:
            for gone in indexed - on_disk:
                index.execute("DELETE FROM summaries WHERE file = ?", (gone,))
            for new in on_disk - indexed:
                # removed meanwhile, or not a record: left out, as find_similar leaves it
                with suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
                    record = json.loads((self.root / "analyses" / new).read_text())
                    self._index_record(index, new, record)
            index.execute("COMMIT")
        finally:
            if index.in_transaction:
                index.execute("ROLLBACK")

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None:
        path = self.root / "analyses" / _file_name(analysis_id)
        return json.loads(path.read_text()) if path.exists() else None

    def find_similar(
        self, embedding: list[float], limit: int, scan: int, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        """Exact cosine over the newest ``scan`` records (by file time)."""
        files = sorted(
            (self.root / "analyses").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        records = (json.loads(path.read_text()) for path in files[:scan])
        return rank_by_cosine(embedding, records, limit, exclude)

    def put_named(self, kind: NamedKind, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        previous = self.get_named(kind, name)
        document = {
            **fields,
            "name": name,
            "version": (previous["version"] if previous else 0) + 1,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        path = self.root / kind / _file_name(name)
        _write_atomically(path, json.dumps(document, allow_nan=False, sort_keys=True).encode())
        return document

    def get_named(self, kind: NamedKind, name: str) -> dict[str, Any] | None:
        path = self.root / kind / _file_name(name)
        return json.loads(path.read_text()) if path.exists() else None

    def list_named(self, kind: NamedKind) -> list[dict[str, Any]]:
        documents = [json.loads(p.read_text()) for p in (self.root / kind).glob("*.json")]
        return sorted(documents, key=lambda document: document["name"])

    def delete_named(self, kind: NamedKind, name: str) -> bool:
        path = self.root / kind / _file_name(name)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def ping(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)


class LocalObjectStore:
    """Objects as files under ``DATA_DIR/objects/<key>``; URLs are local paths."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        with suppress(OSError):  # as for the records: a read-only disk fails writes, not start
            self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """The key's file, strictly inside the folder: a symlink out of it (to a file elsewhere,
        to /etc, to /proc/self/environ) is refused, for reads and writes alike."""
        path = self.root / check_object_key(key)
        if any(len(part.encode()) > MAX_NAME_BYTES for part in key.split("/")):
            raise BadObjectKey(f"a file name is at most {MAX_NAME_BYTES} bytes between slashes")
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):  # a link loop
            raise BadObjectKey("it is a loop of symbolic links") from None
        if not resolved.is_relative_to(self.root.resolve()):
            raise BadObjectKey("it leads out of the objects folder (a symbolic link)")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        _write_atomically(self._path(key), data)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise ObjectTooLarge(key, size)
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def url(self, key: str) -> str:
        return str(self._path(key))

    def ping(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)


class LruResultCache:
    """A bounded in-process cache: the newest ``capacity`` results, least recently used dropped."""

    backend = "memory"

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> dict[str, Any] | None:
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return json.loads(self._entries[key])

    def set(self, key: str, value: dict[str, Any]) -> bool:
        if self.capacity <= 0:
            return False
        self._entries[key] = json.dumps(value, allow_nan=False)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return True

    def ping(self) -> bool:
        return True
