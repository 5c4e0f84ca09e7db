"""The history dashboard (SPEC 11) in a real browser: started by the README's command over a store
filled by real ``analyze`` jobs, opened in headless Chromium (overview, a desk, an analysis, the
filters, the CSV), with every request the pages make kept and checked to stay on loopback."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboard.charts import compliance_chart
from tests.browser import Browser
from tests.conftest import ROOT
from tests.services import free_port, wait_for_port

# desk -> the rules its jobs send: A1 breaks a critical rule, A2 keeps every rule, B1 a warning
DESK_RULES = {
    "A1": ["at most 0 mugs on the desk (critical)"],
    "A2": ["at most 5 mugs on the desk"],
    "B1": ["at most 0 mugs on the desk (warning)", "at most 5 mugs on the desk"],
}
JOBS_PER_DESK = 3


@dataclass
class Served:
    url: str
    data_dir: Path
    records: list[dict[str, Any]]


def start_dashboard(data_dir: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], int]:
    """``python -m dashboard`` as the README starts it, on a free loopback port."""
    port = free_port()
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MONGODB", "R2_", "REDIS", "DASHBOARD", "RUNPOD_"))
    }
    environment.update(DATA_DIR=str(data_dir), **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--port", str(port), *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, port


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait(10)


@pytest.fixture
def served(make_worker: Any, desk_b64: str, tmp_path: Path) -> Iterator[Served]:
    """Nine real analyze jobs on three desks; their records then spread over the last three days
    (as a week of jobs would have left them: the jobs themselves ran just now)."""
    worker = make_worker()
    now = datetime.now(UTC)
    for desk, rules in DESK_RULES.items():
        for number in range(JOBS_PER_DESK):
            job_id = f"{desk}-{number}"
            metadata = {"desk": desk, "camera": f"cam-{number % 2}"}
            output = worker.handle(
                {"id": job_id, "input": {"image": desk_b64, "rules": rules, "metadata": metadata}}
            )
            assert "error" not in output, output
            record = worker.stores.records.get_analysis(job_id)
            record["created_at"] = (now - timedelta(days=2 - number, hours=1)).isoformat()
            worker.stores.records.put_analysis(record)
    data_dir = tmp_path / "data"
    process, port = start_dashboard(data_dir)
    try:
        wait_for_port(port, 30)
        records = [
            worker.stores.records.get_analysis(f"{d}-{n}") for d in DESK_RULES for n in range(3)
        ]
        yield Served(f"http://127.0.0.1:{port}", data_dir, records)
    finally:
        stop(process)


@pytest.fixture
def browser() -> Iterator[Browser]:
    started = Browser()
    yield started
    started.stop()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def count(browser: Browser, selector: str) -> int:
    return int(browser.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))


def texts(browser: Browser, selector: str) -> list[str]:
    return list(
        browser.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(selector)}), e => e.textContent.trim())"
        )
    )


def test_the_dashboard_in_a_real_browser(served: Served, browser: Browser, tmp_path: Path) -> None:
    # ---- the overview: the chart, the violations table, each desk's latest picture
    browser.open(served.url + "/")
    assert texts(browser, "#total-analyses") == ["9"]
    assert count(browser, "#compliance-chart g.series") == 3
    assert sorted(
        browser.evaluate(
            "Array.from(document.querySelectorAll('#compliance-chart g.series'), g => g.dataset.series)"
        )
    ) == ["A1", "A2", "B1"]
    # A1's line (never compliant) lies along 0 %, A2's (always) along 100 %, three days each
    assert count(browser, "#compliance-chart g.series[data-series=A1] circle") == 3
    rules = texts(browser, "#violations tbody tr td:first-child")
    assert "at most 0 mugs on the desk (critical)" in rules
    critical = browser.evaluate(
        "Array.from(document.querySelectorAll('#violations tbody tr'))"
        ".find(r => r.cells[0].textContent.includes('(critical)')).cells[3].textContent"
    )
    assert critical.strip() == str(JOBS_PER_DESK)
    assert count(browser, "#desks article.desk") == 3
    assert browser.evaluate(
        "Array.from(document.querySelectorAll('#desks img')).every(i => i.naturalWidth > 100)"
    )
    a1 = texts(browser, "#desks article[data-desk=A1] ul.failed li")
    assert a1 and a1[0].startswith("critical 1 mug found")
    assert texts(browser, "#desks article[data-desk=A2] ul.failed li") == ["Every rule holds."]
    overview = browser.screenshot(tmp_path / "overview.png")
    assert png_size(overview)[0] >= 1200

    # ---- the filters, through htmx: only desk A2's analyses
    browser.evaluate(
        "document.querySelector('form.filters input[name=desk]').value = 'A2';"
        "document.querySelector('form.filters button').click()"
    )
    browser.wait_until("document.querySelectorAll('#desks article.desk').length === 1")
    assert texts(browser, "#total-analyses") == ["3"]
    assert browser.evaluate("location.search").startswith("?")  # the filtered view has its URL

    # ---- a desk
    browser.open(served.url + "/desk/A1")
    assert set(texts(browser, "#analyses tbody tr td:nth-child(3)")) == {"A1"}
    assert browser.evaluate("document.querySelector('#latest img').naturalWidth") > 100
    assert count(browser, "#compliance-chart g.series") == 2  # by camera
    browser.screenshot(tmp_path / "desk.png")

    # ---- one analysis in full
    record = next(r for r in served.records if r["analysis_id"] == "A1-2")
    browser.open(served.url + "/analysis/A1-2")
    assert count(browser, "#rules tbody tr") == len(record["rules"])
    assert texts(browser, "#rules tbody tr td:nth-child(4)") == [
        r["status"] for r in record["rules"]
    ]
    assert (
        browser.evaluate("document.querySelector('img.annotated').naturalWidth")
        == (record["image"]["width"])
    )
    browser.screenshot(tmp_path / "analysis.png")

    # ---- the CSV export, fetched by the page
    exported = browser.evaluate("fetch('/export.csv?desk=B1').then(r => r.text())")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(row["analysis_id"] for row in rows) == ["B1-0", "B1-1", "B1-2"]
    assert {row["compliant"] for row in rows} == {"False"}

    # ---- nothing left loopback
    assert browser.requests, "the pages made no requests at all?"
    # data: URLs are the browser's own (the date inputs' icons): nothing is sent anywhere
    outside = [url for url in browser.requests if not url.startswith((served.url + "/", "data:"))]
    assert outside == []


def test_an_unknown_analysis_and_bad_filters_get_clear_pages(served: Served) -> None:
    for path, status, message in [
        ("/analysis/nope", 404, "no analysis"),
        ("/?since=yesterday", 400, "since: expected an ISO 8601"),
        ("/desk/Z9", 404, "no analyses of desk"),
    ]:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(served.url + path, timeout=10)
        assert error.value.code == status
        assert message in error.value.read().decode()


def test_beyond_loopback_it_needs_a_token(tmp_path: Path) -> None:
    process, _ = start_dashboard(tmp_path / "data", "--host", "0.0.0.0")
    try:
        assert process.wait(60) == 2
        assert "without DASHBOARD_TOKEN" in process.stderr.read()  # type: ignore[union-attr]
    finally:
        stop(process)


def test_with_a_token_every_request_carries_it(tmp_path: Path) -> None:
    process, port = start_dashboard(tmp_path / "data", DASHBOARD_TOKEN="let-me-in")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 30)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(base + "/", headers={"Authorization": "Bearer let-me-in"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        browser_like = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser_like.open(base + "/?token=let-me-in", timeout=10) as answer:
            assert answer.status == 200 and "token" not in answer.url  # redirected, cookie set
        with browser_like.open(base + "/static/style.css", timeout=10) as answer:
            assert answer.status == 200  # the cookie carries it from then on
    finally:
        stop(process)


def test_the_vendored_htmx_is_the_one_documented() -> None:
    static = ROOT / "dashboard" / "static"
    digest = hashlib.sha256((static / "htmx.min.js").read_bytes()).hexdigest()
    assert digest in (static / "VENDORED.md").read_text()


@pytest.mark.parametrize(
    ("series", "lines", "first_y"),
    [
        ({}, 0, None),
        ({"A1": {"2026-11-01": (0, 2)}}, 1, "bottom"),
        (
            {"A1": {"2026-11-01": (2, 2), "2026-11-03": (1, 2)}, "A2": {"2026-11-02": (0, 0)}},
            2,
            "top",
        ),
    ],
)
def test_the_chart_puts_rates_between_its_axes(
    series: dict[str, dict[str, tuple[int, int]]], lines: int, first_y: str | None
) -> None:
    chart = compliance_chart(series)
    left, top, right, bottom = chart.plot
    assert len(chart.lines) == lines
    for line in chart.lines:
        for point in line.points:
            assert left <= point.x <= right and top <= point.y <= bottom
    if first_y is not None:
        assert chart.lines[0].points[0].y == (bottom if first_y == "bottom" else top)
    # a day without analyses has no point
    assert all(len(line.points) == 0 for line in chart.lines[1:] if line.label == "A2")
