"""Writes that failed, kept in order and replayed later, so nothing is lost (SPEC 5).

The outbox is a SQLite database (``DATA_DIR/outbox/outbox.sqlite3``, WAL journal, synchronous
FULL): an entry is committed, so durable, before the job that made it returns, and replay deletes
an entry in its own transaction once its store has it. A kill at any point therefore loses no
committed entry; at worst a write is repeated, and every write is idempotent (records are upserts
by id, objects puts by key), so each record and object ends up in its store exactly once.

Replay goes in order and stops at the first failure, so later writes never overtake earlier ones.
Two things must not block the queue for ever: an entry that cannot be read (corrupt, or of a kind
this worker does not know), and an entry its store keeps refusing while the store answers (after
``MAX_ATTEMPTS`` tries). Both are set aside in the ``dead`` table with the reason, logged as
errors, for a person to look at (``dead_entries``). A store that is down does not count against
an entry: it waits as long as it takes.

When the disk is full or read-only, entries are kept in memory (in order, after those on disk) and
moved to the database as soon as it takes writes again; only a restart during such an outage loses
them, and the job's ``persisted`` says they were not written. A database that cannot be opened
(corrupt, or a folder in its place) is moved aside with the reason logged: the worker always starts.
An outbox of the earlier JSON-lines format is migrated on start.
The outbox belongs to one worker process: keep ``DATA_DIR`` on the container's own disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.base import ObjectStore, RecordStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REPLAY_BATCH = 100
DATABASE = "outbox.sqlite3"
KINDS = ("record", "object")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    content_type TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT, key TEXT, data BLOB, content_type TEXT,
    reason TEXT NOT NULL,
    set_aside_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    """One write to do again: a record (its JSON) or an object (its bytes)."""

    kind: str
    key: str
    data: bytes
    content_type: str = ""
    row: int | None = None  # its id in the database; None while it is held in memory


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / DATABASE
        self._lock = threading.Lock()
        self._memory: list[Entry] = []  # entries the disk refused, oldest first
        self._memory_dead: list[dict[str, Any]] = []
        self._head_failures = 0
        self._db = self._open()
        if self._db is not None:
            self._migrate_jsonl()

    # ------------------------------------------------------------------ adding

    def add_record(self, record: dict[str, Any]) -> None:
        data = json.dumps(record, allow_nan=False, separators=(",", ":")).encode()
        self._add(Entry("record", str(record["analysis_id"]), data))

    def add_object(self, key: str, data: bytes, content_type: str) -> None:
        self._add(Entry("object", key, data, content_type))

    def _add(self, entry: Entry) -> None:
        """Committed to disk before returning, or kept in memory when the disk refuses it."""
        with self._lock:
            if not self._flush_memory() or not self._insert(entry):
                self._memory.append(entry)
                log.warning(
                    "outbox: the disk refused an entry; %d kept in memory", len(self._memory)
                )

    # ------------------------------------------------------------------ reading

    def pending(self) -> int:
        with self._lock:
            on_disk = 0
            if self._db is not None:
                try:
                    on_disk = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                except sqlite3.Error:
                    log.warning("outbox: cannot count the entries on disk", exc_info=True)
            return on_disk + len(self._memory)

    def dead_entries(self) -> list[dict[str, Any]]:
        """What was set aside: kind, key and why (the bytes stay in the database)."""
        with self._lock:
            found = list(self._memory_dead)
            if self._db is not None:
                rows = self._db.execute("SELECT kind, key, reason FROM dead ORDER BY id")
                found = [{"kind": k, "key": key, "reason": r} for k, key, r in rows] + found
            return found

    # ------------------------------------------------------------------ replay

    def replay(
        self, records: RecordStore, objects: ObjectStore, limit: int = REPLAY_BATCH
    ) -> tuple[int, str | None]:
        """Write up to ``limit`` pending entries, in order.

        Returns how many were written and the store that failed (None when none did).
        """
        with self._lock:
            self._flush_memory()
            written = 0
            for entry in self._oldest(limit):
                outcome = self._replay_one(entry, records, objects)
                if outcome in ("records", "objects"):
                    return written, outcome
                try:
                    self._remove(entry)
                except sqlite3.Error:  # the disk took the write but not the delete: later
                    log.warning("outbox: could not mark an entry done; it will be written again")
                    return written, None
                written += outcome == "written"
            return written, None

    def _oldest(self, limit: int) -> list[Entry]:
        entries: list[Entry] = []
        if self._db is not None:
            try:
                rows = self._db.execute(
                    "SELECT id, kind, key, data, content_type FROM entries ORDER BY id LIMIT ?",
                    (limit,),
                ).fetchall()
                entries = [
                    Entry(kind, key, bytes(data), ctype, row)
                    for row, kind, key, data, ctype in rows
                ]
            except sqlite3.Error:
                log.warning("outbox: cannot read the entries on disk", exc_info=True)
        return (entries + self._memory)[:limit]

    def _replay_one(self, entry: Entry, records: RecordStore, objects: ObjectStore) -> str:
        """``written``, ``dead`` (set aside), or the name of the store that failed."""
        if entry.kind not in KINDS:
            self._bury(entry, f"an entry of unknown kind {entry.kind[:40]!r}")
            return "dead"
        store = "records" if entry.kind == "record" else "objects"
        try:
            if entry.kind == "record":
                record = json.loads(entry.data)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            else:
                record = None
        except (ValueError, UnicodeDecodeError) as error:
            self._bury(entry, f"the record is not readable JSON ({type(error).__name__})")
            return "dead"
        try:
            if record is not None:
                records.put_analysis(record)
            else:
                objects.put(entry.key, entry.data, entry.content_type)
        except Exception as error:
            if not _answers(records if record is not None else objects):
                log.warning("outbox replay stopped: the %s store is down", store)
                return store
            self._head_failures += 1  # the store is up and still refuses this entry
            if self._head_failures >= MAX_ATTEMPTS:
                why = f"the {store} store refused it {MAX_ATTEMPTS} times ({type(error).__name__})"
                self._bury(entry, why)
                return "dead"
            log.warning("outbox replay stopped: the %s store is still failing", store)
            return store
        self._head_failures = 0
        return "written"

    # ------------------------------------------------------------------ the database

    def _open(self) -> sqlite3.Connection | None:
        """The database, made if missing; moved aside if it is not one; None when the disk
        allows neither (then the outbox lives in memory until a later write can open it)."""
        for attempt in range(2):
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path, timeout=5, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                db.execute("SELECT COUNT(*) FROM entries").fetchone()
                return db
            except sqlite3.DatabaseError as error:
                if attempt or not self._set_aside_file(self.path, str(error)):
                    break
            except OSError as error:
                if attempt or not self._set_aside_file(self.path, str(error)):
                    break
        log.error("outbox: no database at %s; entries are kept in memory", self.path)
        return None

    def _set_aside_file(self, path: Path, why: str) -> bool:
        """Move a damaged outbox file (or a folder where it should be) out of the way."""
        if not path.exists():
            return False
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        try:
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError:
            return False
        log.error("outbox: %s could not be used (%s); moved to %s", path, why[:200], aside)
        return True

    def _insert(self, entry: Entry) -> bool:
        if self._db is None:
            self._db = self._open()
            if self._db is None:
                return False
        try:
            self._db.execute(
                "INSERT INTO entries (kind, key, data, content_type) VALUES (?, ?, ?, ?)",
                (entry.kind, entry.key, entry.data, entry.content_type),
            )
            return True
        except sqlite3.Error:
            log.warning("outbox: could not write an entry to disk", exc_info=True)
            return False

    def _flush_memory(self) -> bool:
        """Move the entries held in memory to disk, oldest first; True when none is left."""
        while self._memory:
            if not self._insert(self._memory[0]):
                return False
            self._memory.pop(0)
        return True

    def _remove(self, entry: Entry) -> None:
        if entry.row is None:
            self._memory.remove(entry)
            return
        assert self._db is not None
        self._db.execute("DELETE FROM entries WHERE id = ?", (entry.row,))

    def _bury(self, entry: Entry, why: str) -> None:
        log.error("outbox: setting an entry (%s %s) aside: %s", entry.kind, entry.key[:80], why)
        self._head_failures = 0
        if self._db is not None:
            try:
                with self._transaction():
                    self._db.execute(
                        "INSERT INTO dead (kind, key, data, content_type, reason, set_aside_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (entry.kind, entry.key, entry.data, entry.content_type, why, time.time()),
                    )
                    if entry.row is not None:
                        self._db.execute("DELETE FROM entries WHERE id = ?", (entry.row,))
                return
            except sqlite3.Error:
                log.warning("outbox: could not set the entry aside on disk", exc_info=True)
        self._memory_dead.append({"kind": entry.kind, "key": entry.key, "reason": why})
        if entry.row is None:
            self._memory.remove(entry)

    def _transaction(self) -> _Transaction:
        assert self._db is not None
        return _Transaction(self._db)

    # ------------------------------------------------------------------ migration

    def _migrate_jsonl(self) -> None:
        """Take over an outbox of the earlier format (``entries.jsonl``, ``replayed``, ``blobs/``,
        ``dead.jsonl``) in one transaction, then remove its files. A kill in between is safe: the
        file's checksum, committed with its entries, keeps it from being taken twice."""
        legacy = self.root / "entries.jsonl"
        if legacy.is_dir():
            self._set_aside_file(legacy, "a folder where the outbox file should be")
            return
        if not legacy.exists():
            return
        data = legacy.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert self._db is not None
        done = self._db.execute("SELECT value FROM meta WHERE name = 'jsonl'").fetchone()
        if done is None or done[0] != digest:
            lines = [line for line in data.split(b"\n") if line.strip()]
            start = self._legacy_progress(len(lines))
            with self._transaction():
                for line in lines[start:]:
                    self._migrate_line(line)
                for line in self._legacy_dead():
                    self._db.execute(
                        "INSERT INTO dead (kind, key, data, content_type, reason, set_aside_at) "
                        "VALUES ('', '', ?, '', 'set aside by the earlier outbox', ?)",
                        (line, time.time()),
                    )
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('jsonl', ?)", (digest,)
                )
            log.info("outbox: took over %d entries of the earlier format", len(lines) - start)
        for name in ("entries.jsonl", "replayed", "dead.jsonl"):
            (self.root / name).unlink(missing_ok=True)
        shutil.rmtree(self.root / "blobs", ignore_errors=True)

    def _legacy_progress(self, lines: int) -> int:
        try:
            done = int((self.root / "replayed").read_text())
        except (OSError, ValueError):
            return 0
        if not 0 <= done <= lines:
            # a crash during the old clear leaves a marker past the file: repeating writes is
            # safe (they are idempotent), skipping them is not
            log.warning(
                "outbox: the earlier progress marker (%d) is past its %d lines", done, lines
            )
            return 0
        return done

    def _legacy_dead(self) -> list[bytes]:
        path = self.root / "dead.jsonl"
        if not path.is_file():
            return []
        return [line for line in path.read_bytes().split(b"\n") if line.strip()]

    def _migrate_line(self, line: bytes) -> None:
        assert self._db is not None
        try:
            entry = json.loads(line.decode("utf-8"))
            kind = entry["kind"]
            if kind == "record":
                record = json.dumps(entry["record"], allow_nan=False, separators=(",", ":"))
                row = ("record", str(entry["record"]["analysis_id"]), record.encode(), "")
            elif kind == "object":
                blob = str(entry["blob"])
                if not _SHA256.fullmatch(blob):  # never a path: '../' would read outside
                    raise ValueError("its blob name is not a sha256")
                row = (
                    "object",
                    str(entry["key"]),
                    (self.root / "blobs" / blob).read_bytes(),
                    str(entry["content_type"]),
                )
            else:
                raise ValueError(f"unknown kind {str(kind)[:40]!r}")
        except (ValueError, KeyError, TypeError, OSError, UnicodeDecodeError) as error:
            why = f"an unreadable entry of the earlier outbox ({type(error).__name__}: {error})"
            log.error("outbox: setting an entry aside: %s", why[:300])
            self._db.execute(
                "INSERT INTO dead (kind, key, data, content_type, reason, set_aside_at) "
                "VALUES ('', '', ?, '', ?, ?)",
                (line, why[:500], time.time()),
            )
            return
        self._db.execute(
            "INSERT INTO entries (kind, key, data, content_type) VALUES (?, ?, ?, ?)", row
        )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.db.execute("COMMIT" if error is None else "ROLLBACK")


def _answers(store: RecordStore | ObjectStore) -> bool:
    try:
        return bool(store.ping())
    except Exception:
        return False
