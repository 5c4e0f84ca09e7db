"""Exact nearest neighbours by cosine similarity: the fallback where no vector index exists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def rank_by_cosine(
    query: list[float], records: Iterable[dict[str, Any]], limit: int, exclude: str | None = None
) -> list[dict[str, Any]]:
    """The ``limit`` records whose embedding has the highest cosine similarity to ``query``."""
    target = np.asarray(query, dtype=np.float32)
    target /= max(float(np.linalg.norm(target)), 1e-12)
    scored = []
    for record in records:
        vector = record.get("embedding")
        if not vector or record.get("analysis_id") == exclude or len(vector) != len(target):
            continue
        candidate = np.asarray(vector, dtype=np.float32)
        score = float(candidate @ target) / max(float(np.linalg.norm(candidate)), 1e-12)
        scored.append((score, record))
    scored.sort(key=lambda item: -item[0])
    return [
        {
            "analysis_id": record["analysis_id"],
            "score": round(score, 6),
            "image": record.get("image"),
            "created_at": record.get("created_at"),
            "metadata": record.get("metadata", {}),
        }
        for score, record in scored[:limit]
    ]
