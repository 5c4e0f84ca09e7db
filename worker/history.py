"""The analyses read back (SPEC 11): the ``stats`` and ``list_analyses`` actions, and what the
dashboard shows, through the results store's own interface (no second data layer)."""

from __future__ import annotations

import logging
from typing import Any

from storage.base import ObjectStore, RecordStore
from storage.history import Cursor, HistoryQuery
from worker.errors import JobError
from worker.schemas import (
    AnalysisSummary,
    ListAnalysesInput,
    ListAnalysesOut,
    StatsInput,
    StatsOut,
    StatsRow,
)

log = logging.getLogger(__name__)


class History:
    def __init__(self, records: RecordStore, objects: ObjectStore) -> None:
        self.records = records
        self.objects = objects

    def stats(self, request: StatsInput) -> StatsOut:
        rows = self._ask(lambda: self.records.analysis_stats(request.query(), request.group_by))
        return StatsOut(group_by=request.group_by, rows=[StatsRow(**row) for row in rows])

    def list(self, request: ListAnalysesInput) -> ListAnalysesOut:
        return self.page(request.query(), request.limit, request.after())

    def page(self, query: HistoryQuery, limit: int, after: Cursor | None = None) -> ListAnalysesOut:
        """Up to ``limit`` summaries, newest first, and the cursor of the next page (None: the last)."""
        found = self._ask(lambda: self.records.list_analyses(query, limit + 1, after))
        rows = [
            AnalysisSummary(**row, annotated_url=self.annotated_url(row["annotated_key"]))
            for row in found[:limit]
        ]
        more = len(found) > limit
        last = rows[-1] if more else None
        next_cursor = (
            Cursor(last.created_at or "", last.analysis_id).encode() if last is not None else None
        )
        return ListAnalysesOut(analyses=rows, next_cursor=next_cursor)

    def annotated_url(self, key: str | None) -> str | None:
        """A fresh URL for an annotated image (a stored one may have expired)."""
        if key is None:
            return None
        try:
            return self.objects.url(key)
        except Exception:
            log.warning("objects store could not sign a URL for %s", key, exc_info=True)
            return None

    def _ask(self, call: Any) -> Any:
        try:
            return call()
        except Exception as error:
            log.warning("history query failed", exc_info=True)
            raise JobError(
                "internal_error",
                f"the results store ({self.records.backend}) did not answer "
                f"({type(error).__name__}); try again",
            ) from None
