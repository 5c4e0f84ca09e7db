"""Writes that failed, kept on local disk in order and replayed later, so nothing is lost (SPEC 5).

``DATA_DIR/outbox/entries.jsonl`` is append-only: one line per failed write (a record, or an
object whose bytes sit in ``blobs/``). ``replayed`` holds how many lines have been written to their
store since. Replay goes in order and stops at the first failure, so later writes never overtake
earlier ones; every write is idempotent (records are upserts by id, objects are puts by key), so a
crash between a write and the progress update only repeats that write. Once everything is
replayed the files are cleared.
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


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries = root / "entries.jsonl"
        self.progress = root / "replayed"
        self.blobs = root / "blobs"
        self._lock = threading.Lock()
        self.blobs.mkdir(parents=True, exist_ok=True)

    def add_record(self, record: dict[str, Any]) -> None:
        self._append({"kind": "record", "record": record})

    def add_object(self, key: str, data: bytes, content_type: str) -> None:
        digest = hashlib.sha256(data).hexdigest()
        blob = self.blobs / digest
        if not blob.exists():
            temporary = blob.with_suffix(".tmp")
            temporary.write_bytes(data)
            temporary.replace(blob)
        self._append({"kind": "object", "key": key, "blob": digest, "content_type": content_type})

    def pending(self) -> int:
        with self._lock:
            return len(self._lines()) - self._replayed()

    def replay(self, records: RecordStore, objects: ObjectStore) -> tuple[int, str | None]:
        """Write what is pending, in order. Returns (how many were written, the store that failed)."""
        with self._lock:
            lines = self._lines()
            done = self._replayed()
            start = done
            failed: str | None = None
            for line in lines[done:]:
                entry = json.loads(line)
                try:
                    if entry["kind"] == "record":
                        records.put_analysis(entry["record"])
                    else:
                        data = (self.blobs / entry["blob"]).read_bytes()
                        objects.put(entry["key"], data, entry["content_type"])
                except Exception:
                    failed = "records" if entry["kind"] == "record" else "objects"
                    log.warning("outbox replay stopped: the %s store is still failing", failed)
                    break
                done += 1
                self.progress.write_text(str(done))
            if lines and done == len(lines):
                self._clear()
            return done - start, failed

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, allow_nan=False, separators=(",", ":"))
        with self._lock, self.entries.open("a") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _lines(self) -> list[str]:
        if not self.entries.exists():
            return []
        return [line for line in self.entries.read_text().splitlines() if line.strip()]

    def _replayed(self) -> int:
        return int(self.progress.read_text()) if self.progress.exists() else 0

    def _clear(self) -> None:
        self.entries.unlink(missing_ok=True)
        self.progress.unlink(missing_ok=True)
        for blob in self.blobs.iterdir():
            blob.unlink(missing_ok=True)
