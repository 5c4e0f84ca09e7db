"""report.html for a batch: totals, one row per image with its annotated thumbnail, failed rules
in red. Self-contained: thumbnails are embedded, so the file can be mailed or archived as is."""

from __future__ import annotations

import base64
import io
import urllib.request
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image

THUMBNAIL_WIDTH = 320

TEMPLATES = Path(__file__).resolve().parent / "templates"


def write_report(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Render every result row (ok and failed) into one HTML file; returns its path."""
    entries = [_entry(row) for row in sorted(rows, key=lambda r: r["key"])]
    ok = [e for e in entries if not e["error"]]
    scores = [e["score"] for e in ok if e["score"] is not None]
    totals = {
        "images": len(entries),
        "ok": len(ok),
        "failed": len(entries) - len(ok),
        "mugs": sum(e["mugs"] for e in ok),
        "violations": sum(e["violations"] for e in ok),
        "compliant": sum(1 for e in ok if e["violations"] == 0),
        "mean_score": f"{sum(scores) / len(scores):.2f}" if scores else "–",
    }
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    html = environment.get_template("report.html.j2").render(
        title=title, totals=totals, rows=entries
    )
    path.write_text(html)
    return path


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    result = row.get("result") or {}
    rules = result.get("rules", [])
    failed_rules = [r for r in rules if r.get("status") == "fail"]
    violations = len(failed_rules)
    return {
        "key": row["key"],
        "metadata": ", ".join(f"{k}: {v}" for k, v in (row.get("metadata") or {}).items()),
        "error": row.get("error"),
        "mugs": len(result.get("mugs", [])),
        "violations": violations,
        "score": (result.get("positioning") or {}).get("safety_score"),
        "summary": (result.get("feedback") or {}).get("summary", ""),
        "tips": (result.get("feedback") or {}).get("recommendations", []),
        "rules": failed_rules + [r for r in rules if r.get("status") == "unknown"],
        "thumbnail": _thumbnail((result.get("artifacts") or {}).get("annotated_url")),
        "css": "failed" if row.get("error") else ("violations" if violations else "ok"),
    }


def _thumbnail(location: str | None) -> str | None:
    """The annotated image, small, as base64 JPEG; None when it cannot be read."""
    if not location:
        return None
    try:
        if location.startswith(("http://", "https://")):
            with urllib.request.urlopen(location, timeout=15) as response:  # a presigned URL
                data = response.read()
        else:
            data = Path(location).read_bytes()
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except (OSError, ValueError):
        return None
    image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75)
    return base64.b64encode(buffer.getvalue()).decode()
