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

When the disk is full or read-only, entries are kept in memory (in order, after those on disk; at
most ``MAX_MEMORY_BYTES``) and moved to the database as soon as it takes writes again; only a
restart during such an outage loses them, and the job's ``persisted`` says they were not written.
A database that cannot be opened (corrupt, or a folder in its place) is moved aside with the
reason logged: the worker always starts.
An outbox of the earlier JSON-lines format is migrated when the database opens (every line of it:
repeating a write is safe, skipping one is not, so its progress marker is not trusted).
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
from typing import Any, Protocol

from storage.base import ObjectStore, RecordStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REPLAY_BATCH = 100
# what the outbox may hold in memory while the disk refuses writes; past it a new entry is
# dropped (logged as an error; its job already says persisted false) rather than the worker killed
MAX_MEMORY_BYTES = 256 * 1024 * 1024
DATABASE = "outbox.sqlite3"
KINDS = ("record", "object", "webhook")
# which store takes an entry of each kind; replay() names it when that store fails
STORE_OF_KIND = {"record": "records", "object": "objects", "webhook": "webhooks"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
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
    data: bytes | None  # None: still in the database, read when it is replayed
    content_type: str = ""
    row: int | None = None  # its id in the database; None while it is held in memory


class WebhookSink(Protocol):
    """Where webhook entries go (worker.webhooks.WebhookSender): ``deliver`` raises unless the
    receiver took it; ``ping`` says whether the receiver answered at all (a refusal from a
    receiver that answers counts against the entry; one that is down does not)."""

    def deliver(self, key: str, body: bytes) -> None: ...

    def ping(self) -> bool: ...


class Outbox:
    """The queue of writes to do again, in ``root/<database>``. Webhooks have their own outbox
    (``database``), so a receiver that is down never holds up the records and objects."""

    def __init__(
        self, root: Path, database: str = DATABASE, max_attempts: int = MAX_ATTEMPTS
    ) -> None:
        self.root = root
        self.path = root / database
        self.max_attempts = max_attempts
        self._lock = threading.Lock()  # the database and the entries held in memory
        self._replaying = threading.Lock()
        self._memory: list[Entry] = []  # entries the disk refused, oldest first
        self._memory_dead: list[dict[str, Any]] = []
        self._head_failures = 0
        self._db = self._connect()

    # ------------------------------------------------------------------ adding

    def add_record(self, record: dict[str, Any]) -> None:
        data = json.dumps(record, allow_nan=False, separators=(",", ":")).encode()
        self._add(Entry("record", str(record["analysis_id"]), data))

    def add_object(self, key: str, data: bytes, content_type: str) -> None:
        self._add(Entry("object", key, data, content_type))

    def add_webhook(self, key: str, body: bytes) -> None:
        """A webhook to deliver; ``key`` (the analysis id) is its idempotency key."""
        self._add(Entry("webhook", key, body, "application/json"))

    def _add(self, entry: Entry) -> None:
        """Committed to disk before returning, or kept in memory when the disk refuses it."""
        with self._lock:
            if self._flush_memory() and self._insert(entry):
                return
            held = sum(len(kept.data or b"") for kept in self._memory)
            if held + len(entry.data or b"") > MAX_MEMORY_BYTES:
                why = f"the disk refused it and {held:,} bytes wait in memory already"
                log.error("outbox: dropping an entry (%s %s): %s", entry.kind, entry.key[:80], why)
                self._memory_dead.append({"kind": entry.kind, "key": entry.key, "reason": why})
                return
            self._memory.append(entry)
            log.warning("outbox: the disk refused an entry; %d kept in memory", len(self._memory))

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
        self,
        records: RecordStore | None,
        objects: ObjectStore | None,
        limit: int = REPLAY_BATCH,
        webhooks: WebhookSink | None = None,
    ) -> tuple[int, str | None]:
        """Write up to ``limit`` pending entries, in order (an entry whose store is not given
        stops the replay as if that store were down).

        One replay at a time: a job that finds another replaying goes on without waiting (the
        other keeps the order). The lock on the database is held only between store calls, so
        other jobs add their entries while a slow store takes the replayed ones.
        Returns how many were written and the store that failed (None when none did).
        """
        if not self._replaying.acquire(blocking=False):
            return 0, None
        try:
            with self._lock:
                self._flush_memory()
                batch = self._oldest(limit)
            written = 0
            for entry in batch:
                outcome = self._replay_one(entry, records, objects, webhooks)
                if outcome in STORE_OF_KIND.values():
                    return written, outcome
                if outcome == "dead":
                    continue  # set aside: out of the queue already
                try:
                    with self._lock:
                        self._remove(entry)
                except sqlite3.Error:  # the store has it; the disk took no note: written again
                    log.warning("outbox: could not mark an entry done; it will be written again")
                    return written, None
                written += 1
            return written, None
        finally:
            self._replaying.release()

    def _oldest(self, limit: int) -> list[Entry]:
        """The next entries in order: those on disk, then those in memory. None at all when the
        disk cannot be read: the entries in memory are newer and must not overtake them."""
        if self._db is None:
            return self._memory[:limit]
        try:
            rows = self._db.execute(
                "SELECT id, kind, key, content_type FROM entries ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        except sqlite3.Error:
            log.warning("outbox: cannot read the entries on disk", exc_info=True)
            return []
        on_disk = [Entry(str(k), str(key), None, str(ctype), row) for row, k, key, ctype in rows]
        return (on_disk + self._memory)[:limit]

    def _data(self, entry: Entry) -> bytes:
        """The entry's bytes, read from disk one entry at a time (originals are up to 20 MB)."""
        if entry.data is not None:
            return entry.data
        assert self._db is not None
        (data,) = self._db.execute("SELECT data FROM entries WHERE id = ?", (entry.row,)).fetchone()
        if not isinstance(data, bytes):
            raise TypeError(f"its data is {type(data).__name__}, not bytes")
        return data

    def _replay_one(
        self,
        entry: Entry,
        records: RecordStore | None,
        objects: ObjectStore | None,
        webhooks: WebhookSink | None,
    ) -> str:
        """``written``, ``dead`` (set aside), or the name of the store that failed."""
        if entry.kind not in KINDS:
            self._bury(entry, f"an entry of unknown kind {entry.kind[:40]!r}")
            return "dead"
        store = STORE_OF_KIND[entry.kind]
        sink = {"records": records, "objects": objects, "webhooks": webhooks}[store]
        if sink is None:
            return store
        try:
            with self._lock:
                data = self._data(entry)
            record = json.loads(data) if entry.kind == "record" else None
            if entry.kind == "record" and not isinstance(record, dict):
                raise ValueError("the record is not a JSON object")
        except sqlite3.Error:
            log.warning("outbox: cannot read an entry on disk; replay stops", exc_info=True)
            return store
        except Exception as error:  # anything unreadable is set aside, never raised to the job
            self._bury(entry, f"an unreadable entry ({type(error).__name__}: {str(error)[:200]})")
            return "dead"
        try:
            if record is not None:
                records.put_analysis(record)  # type: ignore[union-attr]
            elif entry.kind == "webhook":
                webhooks.deliver(entry.key, data)  # type: ignore[union-attr]
            else:
                objects.put(entry.key, data, entry.content_type)  # type: ignore[union-attr]
        except Exception as error:
            if not _answers(sink):
                log.warning("outbox replay stopped: the %s store is down", store)
                return store
            self._head_failures += 1  # the store is up and still refuses this entry
            if self._head_failures >= self.max_attempts:
                why = f"the {store} store refused it {self.max_attempts} times ({type(error).__name__})"
                self._bury(entry, why)
                return "dead"
            log.warning("outbox replay stopped: the %s store is still failing", store)
            return store
        self._head_failures = 0
        return "written"

    # ------------------------------------------------------------------ the database

    def _connect(self) -> sqlite3.Connection | None:
        """The database, with an outbox of the earlier format taken over into it."""
        db = self._open()
        if db is not None:
            try:
                self._migrate_jsonl(db)
            except Exception:  # a bad old outbox must not stop the worker: left for a person
                log.exception("outbox: could not take over the earlier outbox; left in place")
        return db

    def _open(self) -> sqlite3.Connection | None:
        """The database, made if missing, and moved aside when it is not a database (or a
        folder is in its place); None when the disk allows none now (read-only, full, busy):
        entries are then held in memory and the same file is tried again at the next write."""
        for attempt in range(2):
            db = None
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                if self.path.is_dir():
                    raise IsADirectoryError(str(self.path))
                db = sqlite3.connect(
                    self.path, timeout=5, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                db.execute("SELECT COUNT(*) FROM entries").fetchone()
                return db
            except (IsADirectoryError, sqlite3.DatabaseError) as error:
                if db is not None:
                    db.close()
                damaged = isinstance(error, IsADirectoryError) or (
                    getattr(error, "sqlite_errorcode", None) in _DAMAGED
                )
                if attempt or not damaged or not self._set_aside_file(self.path, str(error)):
                    break
            except OSError:
                break
        log.error("outbox: no database at %s now; entries are kept in memory", self.path)
        return None

    def _set_aside_file(self, path: Path, why: str) -> bool:
        """Move a damaged outbox file (or a folder in its place), its journal files with it."""
        if not path.exists():
            return False
        aside = path.with_name(f"{path.name}.damaged-{time.time_ns()}")
        try:
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                journal = Path(f"{path}{suffix}")
                if journal.exists():
                    journal.rename(Path(f"{aside}{suffix}"))
        except OSError:
            return False
        log.error("outbox: %s could not be used (%s); moved to %s", path, why[:200], aside)
        return True

    def _insert(self, entry: Entry) -> bool:
        if self._db is None:
            self._db = self._connect()
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
        """Set the entry aside with the reason, out of the queue (on disk, else in memory)."""
        log.error("outbox: setting an entry (%s %s) aside: %s", entry.kind, entry.key[:80], why)
        self._head_failures = 0
        with self._lock:
            self._bury_locked(entry, why)

    def _bury_locked(self, entry: Entry, why: str) -> None:
        if entry.row is None:
            self._memory.remove(entry)
        if self._db is not None:
            try:
                with _Transaction(self._db):
                    if entry.row is None:
                        self._db.execute(
                            "INSERT INTO dead (kind, key, data, content_type, reason, "
                            "set_aside_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (
                                entry.kind,
                                entry.key,
                                entry.data,
                                entry.content_type,
                                why,
                                time.time(),
                            ),
                        )
                    else:
                        self._db.execute(
                            "INSERT INTO dead (kind, key, data, content_type, reason, "
                            "set_aside_at) SELECT kind, key, data, content_type, ?, ? "
                            "FROM entries WHERE id = ?",
                            (why, time.time(), entry.row),
                        )
                        self._db.execute("DELETE FROM entries WHERE id = ?", (entry.row,))
                return
            except sqlite3.Error:
                log.warning("outbox: could not set the entry aside on disk", exc_info=True)
        self._memory_dead.append({"kind": entry.kind, "key": entry.key, "reason": why})

    # ------------------------------------------------------------------ migration

    def _migrate_jsonl(self, db: sqlite3.Connection) -> None:
        """Take over an outbox of the earlier format (``entries.jsonl``, ``blobs/``, ``dead.jsonl``)
        in one transaction, then remove its files. A kill in between is safe: the file's
        checksum, committed with its entries, keeps it from being taken twice."""
        legacy = self.root / "entries.jsonl"
        if legacy.is_dir():
            self._set_aside_file(legacy, "a folder where the outbox file should be")
            return
        if not legacy.exists():
            return
        data = legacy.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        done = db.execute("SELECT value FROM meta WHERE name = 'jsonl'").fetchone()
        if done is None or done[0] != digest:
            lines = [line for line in data.split(b"\n") if line.strip()]
            with _Transaction(db):
                for line in lines:  # all of them: the old progress marker is not trusted
                    self._migrate_line(db, line)
                for line in self._legacy_dead():
                    db.execute(
                        "INSERT INTO dead (kind, key, data, content_type, reason, set_aside_at) "
                        "VALUES ('', '', ?, '', 'set aside by the earlier outbox', ?)",
                        (line, time.time()),
                    )
                db.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('jsonl', ?)", (digest,)
                )
            log.info("outbox: took over %d entries of the earlier format", len(lines))
        for name in ("entries.jsonl", "replayed", "dead.jsonl"):
            (self.root / name).unlink(missing_ok=True)
        shutil.rmtree(self.root / "blobs", ignore_errors=True)

    def _legacy_dead(self) -> list[bytes]:
        path = self.root / "dead.jsonl"
        if not path.is_file():
            return []
        return [line for line in path.read_bytes().split(b"\n") if line.strip()]

    def _migrate_line(self, db: sqlite3.Connection, line: bytes) -> None:
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
        except Exception as error:  # torn, not UTF-8, nested past the recursion limit, ...
            why = f"an unreadable entry of the earlier outbox ({type(error).__name__}: {error})"
            log.error("outbox: setting an entry aside: %s", why[:300])
            db.execute(
                "INSERT INTO dead (kind, key, data, content_type, reason, set_aside_at) "
                "VALUES ('', '', ?, '', ?, ?)",
                (line, why[:500], time.time()),
            )
            return
        db.execute("INSERT INTO entries (kind, key, data, content_type) VALUES (?, ?, ?, ?)", row)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection; ROLLBACK when the body or the
    COMMIT fails, so no transaction is ever left open (later writes would not be committed)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if error is None:
                self.db.execute("COMMIT")
        finally:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")


def _answers(store: RecordStore | ObjectStore | WebhookSink) -> bool:
    try:
        return bool(store.ping())
    except Exception:
        return False
