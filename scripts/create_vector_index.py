"""Create the Atlas Vector Search index that ``find_similar`` uses on ``analyses.embedding``.

    MONGODB_URI=mongodb+srv://... python -m scripts.create_vector_index [--dimensions 512]

Without this index (or on a MongoDB that is not Atlas) ``find_similar`` falls back to exact cosine
similarity over the newest SIMILAR_SCAN_LIMIT analyses. Running it again when the index exists
does nothing.
"""

from __future__ import annotations

import argparse
import sys

from pymongo.operations import SearchIndexModel

from storage.mongo import ANALYSES, connect
from worker.settings import load_settings


def index_model(name: str, dimensions: int) -> SearchIndexModel:
    return SearchIndexModel(
        definition={
            "fields": [
                {
                    "type": "vector",
                    "path": "embedding",
                    "numDimensions": dimensions,
                    "similarity": "cosine",
                },
                {"type": "filter", "path": "image.sha256"},
            ]
        },
        name=name,
        type="vectorSearch",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the find_similar vector index on Atlas.")
    parser.add_argument(
        "--dimensions", type=int, default=512, help="CLIP embedding size (ViT-B/32: 512)"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.mongodb_uri is None:
        print("set MONGODB_URI (or MONGODB_ATLAS_URI) first", file=sys.stderr)
        return 2
    client = connect(settings.mongodb_uri.get_secret_value(), timeout_s=30)
    analyses = client[settings.mongodb_db][ANALYSES]
    existing = {index["name"] for index in analyses.list_search_indexes()}
    if settings.vector_index in existing:
        print(f"index {settings.vector_index!r} already exists on {settings.mongodb_db}.{ANALYSES}")
        return 0
    analyses.create_search_index(index_model(settings.vector_index, args.dimensions))
    where = f"{settings.mongodb_db}.{ANALYSES}"
    print(f"created {settings.vector_index!r} on {where}; Atlas builds it in the background")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
