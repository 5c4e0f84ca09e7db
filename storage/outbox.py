"""Writes that failed, kept on local disk in order and replayed later, so nothing is lost (SPEC 5).

``DATA_DIR/outbox/entries.jsonl`` is append-only: one line per failed write (a record, or an
object whose bytes sit in ``blobs/``). ``replayed`` holds how many lines have been written to their
store since. Replay goes in order and stops at the first failure, so later writes never overtake
earlier ones; every write is idempotent (records are upserts by id, objects are puts by key), so a
crash between a write and the progress update only repeats that write. Once everything is
replayed the files are cleared.

Two things must not block the queue for ever: a line cut short by a crash (it is unreadable, so it
goes to ``dead.jsonl``), and an entry its store keeps refusing while the store answers (after
``MAX_ATTEMPTS`` tries it goes to ``dead.jsonl`` too, logged as an error, for a person to look at).
A store that is down does not count against an entry: it waits as long as it takes.
The outbox belongs to one worker process: keep ``DATA_DIR`` on the container's own disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from storage.base import ObjectStore, RecordStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REPLAY_BATCH = 100


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries = root / "entries.jsonl"
        self.progress = root / "replayed"
        self.dead = root / "dead.jsonl"
        self.blobs = root / "blobs"
        self._lock = threading.Lock()
        self._head_failures = 0
        self.blobs.mkdir(parents=True, exist_ok=True)

    def add_record(self, record: dict[str, Any]) -> None:
        self._append({"kind": "record", "record": record})

    def add_object(self, key: str, data: bytes, content_type: str) -> None:
        digest = hashlib.sha256(data).hexdigest()
        blob = self.blobs / digest
        if not blob.exists():
            _write_atomically(blob, data)
        self._append({"kind": "object", "key": key, "blob": digest, "content_type": content_type})

    def pending(self) -> int:
        with self._lock:
            return len(self._lines()) - self._replayed()

    def replay(
        self, records: RecordStore, objects: ObjectStore, limit: int = REPLAY_BATCH
    ) -> tuple[int, str | None]:
        """Write up to ``limit`` pending entries, in order.

        Returns how many were written and the store that failed (None when none did).
        """
        with self._lock:
            lines = self._lines()
            done = self._replayed()
            written = 0
            failed: str | None = None
            for line in lines[done : done + limit]:
                outcome = self._replay_one(line, records, objects)
                if outcome in ("records", "objects"):
                    failed = outcome
                    break
                done += 1
                written += outcome == "written"
                _write_atomically(self.progress, str(done).encode())
            if lines and done == len(lines):
                self._clear()
            return written, failed

    def _replay_one(self, line: str, records: RecordStore, objects: ObjectStore) -> str:
        """``written``, ``dead`` (set aside), or the name of the store that failed."""
        try:
            entry = json.loads(line)
            kind = entry["kind"]
        except (json.JSONDecodeError, KeyError, TypeError):
            self._bury(line, "unreadable outbox line")
            return "dead"
        store = "records" if kind == "record" else "objects"
        try:
            if kind == "record":
                records.put_analysis(entry["record"])
            else:
                objects.put(
                    entry["key"], (self.blobs / entry["blob"]).read_bytes(), entry["content_type"]
                )
        except FileNotFoundError:
            self._bury(line, "its image bytes are missing")
            return "dead"
        except Exception:
            if not _answers(records if kind == "record" else objects):
                log.warning("outbox replay stopped: the %s store is down", store)
                return store
            self._head_failures += 1  # the store is up and still refuses this entry
            if self._head_failures >= MAX_ATTEMPTS:
                self._bury(line, f"the {store} store refused it {MAX_ATTEMPTS} times")
                return "dead"
            log.warning("outbox replay stopped: the %s store is still failing", store)
            return store
        self._head_failures = 0
        return "written"

    def _bury(self, line: str, why: str) -> None:
        log.error("outbox: setting an entry aside in %s: %s", self.dead, why)
        self._head_failures = 0
        with self.dead.open("a") as out:
            out.write(line.rstrip("\n") + "\n")

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, allow_nan=False, separators=(",", ":"))
        with self._lock, self.entries.open("a+b") as out:
            size = out.seek(0, os.SEEK_END)
            if size:
                out.seek(size - 1)
                if out.read(1) != b"\n":  # a line cut short by a crash stays on a line of its own
                    out.write(b"\n")
            out.write(line.encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())

    def _lines(self) -> list[str]:
        if not self.entries.exists():
            return []
        return [line for line in self.entries.read_text().splitlines() if line.strip()]

    def _replayed(self) -> int:
        try:
            return int(self.progress.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def _clear(self) -> None:
        self.entries.unlink(missing_ok=True)
        self.progress.unlink(missing_ok=True)
        for blob in self.blobs.iterdir():
            blob.unlink(missing_ok=True)


def _answers(store: RecordStore | ObjectStore) -> bool:
    try:
        return bool(store.ping())
    except Exception:
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
