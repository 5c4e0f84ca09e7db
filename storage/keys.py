"""Object keys: the SPEC 5 naming scheme and the check that keeps a key inside its bucket or folder."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "heic": "heic"}
# S3 and R2 take keys of up to 1024 bytes (a file system, names of up to 255: storage.embedded)
MAX_KEY_BYTES = 1024
# an id longer than this is shortened in names made from it (and made unique by its hash)
MAX_NAME_CHARS = 160


class BadObjectKey(ValueError):
    """A key that is empty, absolute, too long or climbs out of the store (``..``); the message
    says why without repeating the key (it may be huge)."""


def check_object_key(key: str) -> str:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(ord(char) < 32 for char in key)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BadObjectKey("empty, absolute, with '..', a backslash or a control character")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise BadObjectKey(f"over {MAX_KEY_BYTES} bytes")
    return key


def short_name(name: str) -> str:
    """``name`` itself, or when it is too long for a file or key segment, its start and a hash of
    the whole (so two long ids never share a name)."""
    if len(name) <= MAX_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    # '+' is percent-encoded in every name made here, so no short name equals another's start
    return f"{name[: MAX_NAME_CHARS - 33]}+{digest}"


def original_key(sha256: str, image_format: str) -> str:
    """Content-addressed: the same image is stored once, whatever job sent it."""
    return f"originals/{sha256[:2]}/{sha256}.{EXTENSIONS.get(image_format, image_format)}"


def annotated_key(analysis_id: str) -> str:
    return f"annotated/{short_name(quote(analysis_id, safe='-_.:'))}.jpg"
