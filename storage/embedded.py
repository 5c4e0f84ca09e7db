"""The embedded defaults of SPEC 6: JSON files, a local objects folder and an in-process LRU cache."""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from storage.base import NAMED_KINDS, NamedKind, ObjectNotFound, ObjectTooLarge
from storage.keys import BadObjectKey, check_object_key, short_name
from storage.similarity import rank_by_cosine

MAX_NAME_BYTES = 255  # a file name, on every common file system


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
    ``DATA_DIR/<kind>/<name>.json``; writing an id or name again replaces its file."""

    backend = "json"

    def __init__(self, root: Path) -> None:
        self.root = root
        # a read-only or full disk must not stop the worker: writes fail (and wait in the
        # outbox) until it takes them again; each write makes its folder
        with suppress(OSError):
            for folder in ("analyses", *NAMED_KINDS):
                (root / folder).mkdir(parents=True, exist_ok=True)

    def put_analysis(self, record: dict[str, Any]) -> None:
        path = self.root / "analyses" / _file_name(record["analysis_id"])
        _write_atomically(path, json.dumps(record, allow_nan=False, sort_keys=True).encode())

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
