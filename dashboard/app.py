"""The history dashboard (SPEC 11): compliance over time per desk or camera, violations by rule and
severity, each desk's latest annotated picture, one analysis in full, filters and a CSV export.

It reads the configured results and objects stores through the worker's own interfaces
(``worker.history.History``, ``RecordStore.get_analysis``, ``ObjectStore.get``): no second data
layer. Pages are rendered on the server (Jinja2); htmx, served from ``static/``, only swaps the
filtered panels and appends pages of rows. Pictures are served by the dashboard itself, so a page
never sends the browser anywhere but the dashboard.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from dashboard.charts import compliance_chart
from storage.base import ObjectNotFound
from storage.history import Cursor, HistoryQuery
from worker.errors import JobError, describe_validation_error
from worker.history import History
from worker.runtime import Stores
from worker.schemas import AnalysisSummary, ListAnalysesInput

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "mugpos_dashboard"
MAX_SERIES = 8  # lines in the chart: the desks (or cameras) with the most analyses
PAGE_ROWS = 25
CSV_PAGE = 200
GROUPINGS = {"desk": "metadata.desk", "camera": "metadata.camera"}
CSV_COLUMNS = (
    "analysis_id",
    "created_at",
    "desk",
    "camera",
    "compliant",
    "safety_score",
    "failed_rules",
    "image_key",
    "annotated_key",
    "metadata",
)


@dataclass(frozen=True)
class Filters:
    """What the filter form asks for, checked as ``list_analyses`` checks it."""

    since: str
    until: str
    desk: str
    camera: str
    by: str
    query: HistoryQuery

    @classmethod
    def read(cls, request: Request, desk: str | None = None) -> Filters:
        params = request.query_params
        given = {
            name: (params.get(name) or "").strip() for name in ("since", "until", "desk", "camera")
        }
        if desk is not None:
            given["desk"] = desk
        by = params.get("by") if params.get("by") in GROUPINGS else "desk"
        chosen = {f"metadata.{name}": given[name] for name in ("desk", "camera") if given[name]}
        try:
            checked = ListAnalysesInput.model_validate(
                {
                    "action": "list_analyses",
                    "since": given["since"] or None,
                    "until": given["until"] or None,
                    "filter": chosen,
                }
            )
        except ValidationError as error:
            raise JobError("invalid_input", describe_validation_error(error)) from None
        return cls(query=checked.query(), by=by or "desk", **given)

    def link(self, **changes: str) -> str:
        """These filters as a query string, with ``changes``."""
        values = {
            "since": self.since,
            "until": self.until,
            "desk": self.desk,
            "camera": self.camera,
            "by": self.by,
            **changes,
        }
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in values.items() if v})


class Dashboard:
    """What each page shows, read from the stores."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.history = History(stores.records, stores.objects)

    def stats(self, query: HistoryQuery, group_by: str) -> list[dict[str, Any]]:
        return self.stores.records.analysis_stats(query, group_by)

    def chart(self, filters: Filters) -> Any:
        """Compliance per day, one line per desk (or camera) of the filtered analyses."""
        group = GROUPINGS[filters.by]
        groups = [row for row in self.stats(filters.query, group) if row["key"] is not None]
        groups.sort(key=lambda row: -row["analyses"])
        series = {}
        for row in groups[:MAX_SERIES]:
            narrowed = HistoryQuery(
                since=filters.query.since,
                until=filters.query.until,
                metadata=(*filters.query.metadata, (group.removeprefix("metadata."), row["key"])),
            )
            series[str(row["key"])] = {
                day["key"]: (day["compliant"], day["analyses"])
                for day in self.stats(narrowed, "day")
            }
        return compliance_chart(series)

    def latest_per_desk(self, filters: Filters) -> list[dict[str, Any]]:
        """Each desk's newest analysis: its picture, failed rules and moves."""
        desks = [row["key"] for row in self.stats(filters.query, "metadata.desk")]
        latest = []
        for desk in desks:
            if desk is None:
                continue
            narrowed = HistoryQuery(
                since=filters.query.since,
                until=filters.query.until,
                metadata=(
                    *((k, v) for k, v in filters.query.metadata if k != "desk"),
                    ("desk", desk),
                ),
            )
            page = self.history.page(narrowed, 1)
            if page.analyses:
                summary = page.analyses[0]
                latest.append({"desk": desk, "summary": summary, "record": self.record(summary)})
        return latest

    def record(self, summary: AnalysisSummary) -> dict[str, Any]:
        return self.stores.records.get_analysis(summary.analysis_id) or {}

    def rule_texts(self, records: list[dict[str, Any]]) -> dict[str, str]:
        texts: dict[str, str] = {}
        for record in records:
            for rule in record.get("rules") or []:
                if rule.get("text"):
                    texts.setdefault(rule["rule_id"], rule["text"])
        return texts

    def image(self, analysis_id: str) -> bytes | None:
        record = self.stores.records.get_analysis(analysis_id)
        key = ((record or {}).get("artifacts") or {}).get("annotated_key")
        if not key:
            return None
        try:
            return self.stores.objects.get(key, max_bytes=50 * 1024 * 1024)
        except ObjectNotFound:
            return None

    def csv_rows(self, query: HistoryQuery) -> Iterator[str]:
        """Every filtered analysis, a page at a time, as CSV lines."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after: Cursor | None = None
        while True:
            page = self.history.page(query, CSV_PAGE, after)
            for row in page.analyses:
                writer.writerow(
                    [
                        row.analysis_id,
                        row.created_at,
                        row.metadata.get("desk", ""),
                        row.metadata.get("camera", ""),
                        row.compliant,
                        row.safety_score,
                        ";".join(row.failed_rules),
                        row.image_key or "",
                        row.annotated_key or "",
                        json.dumps(row.metadata, sort_keys=True),
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_cursor is None:
                return
            after = Cursor.decode(page.next_cursor)


def create_app(stores: Stores, token: str | None = None) -> FastAPI:
    """The dashboard over ``stores``; with ``token``, every request must carry it (a bearer
    header, or once as ``?token=``, which sets a cookie)."""
    app = FastAPI(
        title="Mug positioning: compliance", docs_url=None, redoc_url=None, openapi_url=None
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    board = Dashboard(stores)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    if token is not None:

        @app.middleware("http")
        async def require_token(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            offered = request.query_params.get("token")
            if offered is not None and hmac.compare_digest(offered, token):
                response = RedirectResponse(request.url.remove_query_params("token"), 303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return response
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            cookie = request.cookies.get(TOKEN_COOKIE, "")
            if hmac.compare_digest(bearer, token) or hmac.compare_digest(cookie, token):
                return await call_next(request)
            return Response(
                "a DASHBOARD_TOKEN is required (?token=... once, or a bearer header)", 401
            )

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    @app.exception_handler(JobError)
    async def bad_request(request: Request, error: JobError) -> HTMLResponse:
        status = 404 if error.code == "not_found" else 400 if error.code == "invalid_input" else 503
        return page(request, "error.html", status, message=f"{error.code}: {error.message}")

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        filters = Filters.read(request)

        def read() -> dict[str, Any]:
            rows = board.history.page(filters.query, PAGE_ROWS)
            latest = board.latest_per_desk(filters)
            recent = [board.record(summary) for summary in rows.analyses[:10]]
            totals = board.stats(filters.query, "metadata.desk")
            return {
                "chart": board.chart(filters),
                "by_rule": board.stats(filters.query, "rule"),
                "rule_texts": board.rule_texts([d["record"] for d in latest] + recent),
                "latest": latest,
                "rows": rows,
                "totals": {
                    "analyses": sum(row["analyses"] for row in totals),
                    "compliant": sum(row["compliant"] for row in totals),
                    "violations": sum(row["violations"] for row in totals),
                },
            }

        return page(request, "overview.html", filters=filters, **await run_in_threadpool(read))

    @app.get("/desk/{desk}", response_class=HTMLResponse)
    async def desk_page(request: Request, desk: str) -> HTMLResponse:
        filters = Filters.read(request, desk=desk)

        def read() -> dict[str, Any]:
            rows = board.history.page(filters.query, PAGE_ROWS)
            if not rows.analyses:
                raise JobError("not_found", f"no analyses of desk {desk[:64]!r} match the filters")
            latest = board.record(rows.analyses[0])
            by_camera = Filters(**{**filters.__dict__, "by": "camera"})
            return {
                "chart": board.chart(by_camera if filters.camera == "" else filters),
                "by_rule": board.stats(filters.query, "rule"),
                "rule_texts": board.rule_texts([latest]),
                "rows": rows,
                "latest": latest,
                "summary": rows.analyses[0],
            }

        return page(
            request, "desk.html", filters=filters, desk=desk, **await run_in_threadpool(read)
        )

    @app.get("/analysis/{analysis_id}", response_class=HTMLResponse)
    async def analysis_page(request: Request, analysis_id: str) -> HTMLResponse:
        record = await run_in_threadpool(board.stores.records.get_analysis, analysis_id)
        if record is None:
            raise JobError("not_found", f"no analysis {analysis_id[:80]!r}")
        return page(request, "analysis.html", record=record)

    @app.get("/rows", response_class=HTMLResponse)
    async def more_rows(request: Request, cursor: str) -> HTMLResponse:
        filters = Filters.read(request)
        try:
            after = Cursor.decode(cursor)
        except ValueError:
            raise JobError("invalid_input", "cursor: not a cursor from this dashboard") from None
        rows = await run_in_threadpool(board.history.page, filters.query, PAGE_ROWS, after)
        return page(request, "rows.html", filters=filters, rows=rows)

    @app.get("/image/{analysis_id}")
    async def image(analysis_id: str) -> Response:
        data = await run_in_threadpool(board.image, analysis_id)
        if data is None:
            return Response("no annotated picture", 404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/export.csv")
    async def export(request: Request) -> StreamingResponse:
        filters = Filters.read(request)
        return StreamingResponse(
            board.csv_rows(filters.query),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="analyses.csv"'},
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "stores": await run_in_threadpool(stores.health)}

    return app
