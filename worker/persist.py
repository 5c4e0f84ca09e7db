"""Writes at the edge: a job's record, images and cache entry, where a failing store never fails the
job. A write that fails goes to the outbox and is replayed before a later job; a store that failed
once in a job is not waited on again in that job (its writes go straight to the outbox).

Jobs run side by side (SPEC 9): each has its own ``JobWrites`` (what failed in *this* job), all
share the stores and the one outbox."""

from __future__ import annotations

import logging
from typing import Any

from storage.outbox import Outbox
from worker.runtime import Stores
from worker.schemas import CacheState

log = logging.getLogger(__name__)


class Persister:
    """The stores and the outbox, shared by every job in flight."""

    def __init__(self, stores: Stores, outbox: Outbox) -> None:
        self.stores = stores
        self.outbox = outbox

    def begin_job(self) -> JobWrites:
        """A new job's writes, after replaying what earlier jobs could not write."""
        writes = JobWrites(self.stores, self.outbox)
        failed = self.replay()
        if failed:
            writes.down.add(failed)
        return writes

    def replay(self) -> str | None:
        """Replay the outbox (unless another job is at it); the store that failed, if one did."""
        if self.outbox.pending() == 0:
            return None
        written, failed = self.outbox.replay(self.stores.records, self.stores.objects)
        if written:
            log.info("outbox: replayed %d pending writes", written)
        return failed


class JobWrites:
    """One job's writes: a store that failed once in the job is not waited on again in it."""

    def __init__(self, stores: Stores, outbox: Outbox) -> None:
        self.stores = stores
        self.outbox = outbox
        self.down: set[str] = set()

    def put_object(self, key: str, data: bytes, content_type: str, *, once: bool = False) -> bool:
        """Write one object (``once``: skip it when the key exists: content-addressed originals)."""
        if "objects" not in self.down:
            try:
                if not (once and self.stores.objects.exists(key)):
                    self.stores.objects.put(key, data, content_type)
                return True
            except Exception:
                log.warning(
                    "objects store write failed for %s; kept in the outbox", key, exc_info=True
                )
                self.down.add("objects")
        self.outbox.add_object(key, data, content_type)
        return False

    def put_record(self, record: dict[str, Any]) -> bool:
        if "records" not in self.down:
            try:
                self.stores.records.put_analysis(record)
                return True
            except Exception:
                log.warning(
                    "records store write failed for %s; kept in the outbox",
                    record["analysis_id"],
                    exc_info=True,
                )
                self.down.add("records")
        self.outbox.add_record(record)
        return False

    def object_url(self, key: str) -> str | None:
        if "objects" in self.down:
            return None
        try:
            return self.stores.objects.url(key)
        except Exception:
            log.warning("objects store could not sign a URL for %s", key, exc_info=True)
            return None

    def cache_get(self, key: str) -> tuple[dict[str, Any] | None, bool]:
        """The cached entry, and whether the cache answered at all."""
        if "cache" in self.down:
            return None, False
        try:
            return self.stores.cache.get(key), True
        except Exception:
            log.warning("result cache read failed; analysing without it", exc_info=True)
            self.down.add("cache")
            return None, False

    def cache_set(self, key: str, value: dict[str, Any]) -> CacheState:
        if "cache" in self.down:
            return "unavailable"
        try:
            return "stored" if self.stores.cache.set(key, value) else "miss"
        except Exception:
            log.warning("result cache write failed", exc_info=True)
            self.down.add("cache")
            return "unavailable"
