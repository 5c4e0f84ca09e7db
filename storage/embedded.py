"""The embedded defaults of SPEC 6: JSON files, a local objects folder and an in-process LRU cache."""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from storage.base import ObjectNotFound
from storage.keys import check_object_key


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
    """A file name for any id: percent-encoded, dots too, so no id can name another folder."""
    return quote(identifier, safe="").replace(".", "%2E") + ".json"


class JsonRecordStore:
    """Analyses as ``DATA_DIR/analyses/<id>.json``; writing an id again replaces its file."""

    backend = "json"

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "analyses").mkdir(parents=True, exist_ok=True)

    def put_analysis(self, record: dict[str, Any]) -> None:
        path = self.root / "analyses" / _file_name(record["analysis_id"])
        _write_atomically(path, json.dumps(record, allow_nan=False, sort_keys=True).encode())

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None:
        path = self.root / "analyses" / _file_name(analysis_id)
        return json.loads(path.read_text()) if path.exists() else None

    def ping(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)


class LocalObjectStore:
    """Objects as files under ``DATA_DIR/objects/<key>``; URLs are local paths."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_object_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        _write_atomically(self._path(key), data)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
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

    def set(self, key: str, value: dict[str, Any]) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = json.dumps(value, allow_nan=False)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def ping(self) -> bool:
        return True
