"""The images of a batch: folders, globs, CSV and JSONL files, each image once, in order."""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


@dataclass(frozen=True)
class Item:
    """One image to analyse: where it comes from, the metadata to store with it, and the stored
    camera profile that measures it (None: the run's ``--camera``, if any)."""

    key: str
    kind: str  # "path" | "url" | "key"
    value: str
    metadata: dict[str, Any] = field(default_factory=dict)
    camera: str | None = None

    @property
    def item_id(self) -> str:
        """A stable id the worker accepts (letters and digits), the same on every run."""
        return "i" + hashlib.sha1(self.key.encode()).hexdigest()[:16]

    def source(self) -> dict[str, str]:
        if self.kind == "url":
            return {"image_url": self.value}
        if self.kind == "key":
            return {"image_key": self.value}
        data = base64.b64encode(Path(self.value).read_bytes()).decode()
        return {"image": data}


def read_inputs(specs: Sequence[str]) -> list[Item]:
    """Folders, globs, CSV and JSONL files, in order, each image once."""
    items: dict[str, Item] = {}
    for spec in specs:
        for item in _read_one(spec):
            items.setdefault(item.key, item)
    return list(items.values())


def _read_one(spec: str) -> Iterator[Item]:
    path = Path(spec)
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES:
                yield Item(str(child), "path", str(child))
    elif path.suffix.lower() == ".csv" and path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                yield _from_record(dict(row), path)
    elif path.suffix.lower() in (".jsonl", ".ndjson") and path.is_file():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{number}: not JSON ({error.msg})") from None
                yield _from_record(record, path)
    elif path.is_file():
        yield Item(str(path), "path", str(path))
    else:
        matches = sorted(glob.glob(spec, recursive=True))  # noqa: PTH207 - absolute patterns too
        if not matches:
            raise SystemExit(f"no images found for {spec!r}")
        for match in matches:
            if Path(match).suffix.lower() in IMAGE_SUFFIXES:
                yield Item(match, "path", match)


def _from_record(record: dict[str, Any], origin: Path) -> Item:
    """A CSV row or JSONL object: ``url``, ``key`` or ``path``; ``camera_profile`` names the stored
    camera that measures this image; every other column is metadata."""
    metadata = record.pop("metadata", None) or {}
    camera = record.pop("camera_profile", None) or None
    for kind in ("url", "key", "path"):
        value = record.pop(kind, None)
        if value:
            if kind == "path" and not Path(value).is_absolute():
                value = str(origin.parent / value)
            metadata.update({k: v for k, v in record.items() if v not in (None, "")})
            return Item(f"{kind}:{value}", kind, str(value), metadata, camera)
    raise SystemExit(f"{origin}: every row needs a 'url', 'key' or 'path' (got {sorted(record)})")
