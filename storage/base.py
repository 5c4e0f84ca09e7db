"""The three store interfaces the worker talks to; backends plug in behind them (SPEC 5, 6)."""

from __future__ import annotations

from typing import Any, Protocol


class ObjectNotFound(KeyError):
    """The requested object key does not exist in the objects store."""


class ObjectTooLarge(ValueError):
    """The object is larger than the caller will read; nothing of it was downloaded."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__(f"{key}: {size} bytes")
        self.size = size


class RecordStore(Protocol):
    """Analyses and rule sets (MongoDB in production, JSON files embedded)."""

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

    def put_rule_set(
        self, name: str, description: str, rules: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Create or replace a rule set, bumping its ``version``; returns the stored set."""
        ...

    def get_rule_set(self, name: str) -> dict[str, Any] | None: ...

    def list_rule_sets(self) -> list[dict[str, Any]]: ...

    def delete_rule_set(self, name: str) -> bool:
        """True when a set of that name existed and is now gone."""
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
