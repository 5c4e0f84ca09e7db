"""Object keys: the SPEC 5 naming scheme and the check that keeps a key inside its bucket or folder."""

from __future__ import annotations

from urllib.parse import quote

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "heic": "heic"}


class BadObjectKey(ValueError):
    """A key that is empty, absolute or climbs out of the store (``..``)."""


def check_object_key(key: str) -> str:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BadObjectKey(f"not a valid object key: {key[:80]!r}")
    return key


def original_key(sha256: str, image_format: str) -> str:
    """Content-addressed: the same image is stored once, whatever job sent it."""
    return f"originals/{sha256[:2]}/{sha256}.{EXTENSIONS.get(image_format, image_format)}"


def annotated_key(analysis_id: str) -> str:
    return f"annotated/{quote(analysis_id, safe='-_.:')}.jpg"
