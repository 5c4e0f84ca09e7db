"""The three store interfaces the worker talks to; backends plug in behind them (SPEC 5, 6)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from storage.history import Cursor, HistoryQuery


class ObjectNotFound(KeyError):
    """The requested object key does not exist in the objects store."""


class ObjectTooLarge(ValueError):
    """The object is larger than the caller will read; nothing of it was downloaded."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__(f"{key}: {size} bytes")
        self.size = size


# The named, versioned documents a results store keeps beside the analyses: each kind is a
# MongoDB collection, or a folder of the embedded store.
NamedKind = Literal["rule_sets", "cameras"]
NAMED_KINDS: tuple[NamedKind, ...] = ("rule_sets", "cameras")


class RecordStore(Protocol):
    """Analyses, rule sets and camera profiles (MongoDB in production, JSON files embedded)."""

    backend: str

    def put_analysis(self, record: dict[str, Any]) -> None:
        """Insert or replace the record whose ``analysis_id`` matches (a retried job never duplicates)."""
        ...

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None: ...

    def find_similar(
        self, embedding: list[float], limit: int, scan: int, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        """The ``limit`` analyses whose image embeddings are nearest (cosine) to ``embedding``."""
        ...

    def list_analyses(
        self, query: HistoryQuery, limit: int, after: Cursor | None = None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` summaries (storage.history.summarize) of the analyses the query asks
        for, newest first (ties by id, descending), after the cursor when one is given."""
        ...

    def analysis_stats(self, query: HistoryQuery, group_by: str) -> list[dict[str, Any]]:
        """The SPEC 11 ``stats`` rows (storage.history.finish_rows) of the analyses the query
        asks for, grouped by ``rule``, ``day`` or ``metadata.<key>``."""
        ...

    def put_named(self, kind: NamedKind, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the named document of ``kind`` (a rule set, a camera profile) with
        ``fields``, bumping its ``version``; returns the stored document."""
        ...

    def get_named(self, kind: NamedKind, name: str) -> dict[str, Any] | None: ...

    def list_named(self, kind: NamedKind) -> list[dict[str, Any]]:
        """Every document of ``kind``, by name."""
        ...

    def delete_named(self, kind: NamedKind, name: str) -> bool:
        """True when a document of that name existed and is now gone."""
        ...

    def ping(self) -> bool: ...


class ObjectStore(Protocol):
    """Images by key (R2 / S3 in production, a folder embedded)."""

    backend: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; raises ObjectNotFound when the key does not exist, and
        ObjectTooLarge, before reading it, when it has more than ``max_bytes``."""
        ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str:
        """Where a client can read the object: a presigned URL, or a local path."""
        ...

    def ping(self) -> bool: ...


class ResultCache(Protocol):
    """Finished analyses keyed by everything that determines them (Redis in production, LRU embedded)."""

    backend: str

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any]) -> bool:
        """Store the entry; False when it was not kept (too large, cache disabled)."""
        ...

    def ping(self) -> bool: ...
