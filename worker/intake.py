"""Turn one image source (base64, URL or object key) into a decoded RGB image (SPEC 2.1, 2.3).

Everything here handles untrusted input: sizes are checked before work is done, URLs are fetched
by worker.fetch (public addresses only), and every failure becomes a JobError whose message names
the field. Which source a request gave is the request schemas' business (worker.schemas): they let
through exactly one, so this module takes the validated input as it is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from storage.base import ObjectNotFound, ObjectStore, ObjectTooLarge
from storage.keys import BadObjectKey, check_object_key
from worker.errors import JobError, quoted
from worker.fetch import UrlFetcher

if TYPE_CHECKING:
    from worker.schemas import ImageSource
    from worker.settings import Settings

Source = Literal["base64", "url", "key"]

# PIL format name -> the name reported in results; MPO is a multi-picture JPEG (phone cameras).
_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# What PIL's decoders and EXIF parser raise on hostile bytes; every one means "corrupt".
_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
)
# the longest side at most this many times the shortest (panoramas are ~4:1)
MAX_ASPECT_RATIO = 20


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image plus what the result and the stores need to know about its bytes."""

    image: Image.Image
    data: bytes
    sha256: str
    format: str
    source: Source
    key: str | None

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass(frozen=True)
class IntakeLimits:
    """The bounds one image must stay within; separate from Settings so tests can vary them.
    Its URL fields make it the worker.fetch.FetchLimits a UrlFetcher takes."""

    max_bytes: int
    max_pixels: int
    allow_private_urls: bool
    url_timeout_s: float
    max_redirects: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            allow_private_urls=settings.allow_private_urls,
            url_timeout_s=settings.url_timeout_s,
            max_redirects=settings.url_max_redirects,
        )


def read_image(
    source: ImageSource,
    *,
    field_prefix: str,
    limits: IntakeLimits,
    objects: ObjectStore,
    fetcher: UrlFetcher | None = None,
) -> DecodedImage:
    """Decode the one source of a validated request or batch item; ``field_prefix`` (e.g.
    "images[3].") scopes the messages. ``fetcher`` downloads an ``image_url`` (the worker holds
    one; by default one with the system resolver and the public-address policy)."""
    if source.image is not None:
        return decode_base64(source.image, field=f"{field_prefix}image", limits=limits)
    if source.image_url is not None:
        field = f"{field_prefix}image_url"
        data = (fetcher or UrlFetcher(limits)).fetch(source.image_url, field=field)
        return decode_bytes(data, field=field, source="url", key=None, limits=limits)
    key = source.image_key
    assert key is not None, "the request schemas let no input through without an image source"
    field = f"{field_prefix}image_key"
    data = _read_object(key, field=field, objects=objects, max_bytes=limits.max_bytes)
    return decode_bytes(data, field=field, source="key", key=key, limits=limits)


# --- base64 -----------------------------------------------------------------------------------


def decode_base64(text: str, *, field: str, limits: IntakeLimits) -> DecodedImage:
    """Strict base64 (an optional ``data:...;base64,`` prefix and whitespace are allowed)."""
    body = text.strip()
    if body[:5].lower() == "data:":
        header, comma, body = body.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise JobError(
                "invalid_image",
                f"{field}: a data URL must look like 'data:image/jpeg;base64,<data>'",
            )
    body = "".join(body.split())
    if not body:
        raise JobError("invalid_image", f"{field}: empty; expected base64-encoded image bytes")
    # Exact for valid input; checked before decoding so an oversized payload costs no memory.
    estimate = len(body) * 3 // 4 - body[-2:].count("=")
    if estimate > limits.max_bytes:
        raise JobError(
            "image_too_large",
            f"{field}: about {estimate:,} bytes once decoded, over the limit of "
            f"{limits.max_bytes:,} bytes",
        )
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise JobError(
            "invalid_image",
            f"{field}: not valid base64 ({_reason(exc)}); expected standard base64, "
            "optionally after a 'data:image/...;base64,' prefix",
        ) from None
    return decode_bytes(data, field=field, source="base64", key=None, limits=limits)


def _reason(exc: Exception) -> str:
    """The first clause of a library's message, without anything quoted from the payload."""
    return str(exc).split(":")[0].strip().rstrip(".").lower() or type(exc).__name__


# --- decoding ---------------------------------------------------------------------------------


def decode_bytes(
    data: bytes, *, field: str, source: Source, key: str | None, limits: IntakeLimits
) -> DecodedImage:
    """Decode image bytes to RGB with EXIF orientation applied, checking bytes and pixels first."""
    if not data:
        raise JobError("invalid_image", f"{field}: empty (0 bytes); expected an image")
    if len(data) > limits.max_bytes:
        raise JobError(
            "image_too_large",
            f"{field}: {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes",
        )
    heif = _heif_supported()
    expected = "JPEG, PNG, WebP or HEIC" if heif else "JPEG, PNG or WebP"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                fmt = _check_header(opened, field=field, expected=expected, limits=limits)
                try:
                    opened.load()
                except _DECODER_ERRORS as exc:
                    raise JobError(
                        "invalid_image",
                        f"{field}: truncated or corrupt {fmt.upper()} data ({type(exc).__name__})",
                    ) from None
                image = _to_rgb(_apply_orientation(opened))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise JobError(
                "image_too_large",
                f"{field}: too many pixels; the limit is {limits.max_pixels:,}",
            ) from None
        except UnidentifiedImageError:
            raise JobError(
                "invalid_image", f"{field}: not a recognised image; expected {expected}"
            ) from None
        except _DECODER_ERRORS as exc:
            raise JobError(
                "invalid_image", f"{field}: corrupt image header ({type(exc).__name__})"
            ) from None
    digest = hashlib.sha256(data).hexdigest()
    return DecodedImage(image=image, data=data, sha256=digest, format=fmt, source=source, key=key)


def _check_header(image: Image.Image, *, field: str, expected: str, limits: IntakeLimits) -> str:
    """Format and pixel count from the header alone, before any pixel data is decoded."""
    fmt = _FORMATS.get(image.format or "")
    if fmt is None:
        raise JobError(
            "invalid_image",
            f"{field}: unsupported format '{image.format}'; expected {expected}",
        )
    width, height = image.size
    if width * height > limits.max_pixels:
        raise JobError(
            "image_too_large",
            f"{field}: {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limits.max_pixels:,}",
        )
    # a 65535x1 strip is a few hundred bytes of PNG, but each stage that scales it to a model's
    # input (CLIP's shortest side to 224 px) would ask for gigabytes
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise JobError(
            "invalid_input",
            f"{field}: {width}x{height} is more than {MAX_ASPECT_RATIO} times as long as it is "
            f"wide; at most {MAX_ASPECT_RATIO}:1",
        )
    return fmt


@functools.cache
def _heif_supported() -> bool:
    """Register pi-heif's decoder on first use; HEIC is optional (SPEC 2.1)."""
    try:
        import pi_heif
    except ImportError:
        return False
    pi_heif.register_heif_opener()
    return True


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate per EXIF; unreadable EXIF means no orientation rather than a rejected photo."""
    try:
        return ImageOps.exif_transpose(image)
    except _DECODER_ERRORS:
        return image.copy()


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: alpha over white, 16-bit scaled (not clipped), floats clipped."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        scaled = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if mode == "F":
        clipped = np.clip(np.nan_to_num(np.asarray(image)), 0, 255).round().astype(np.uint8)
        return Image.fromarray(clipped, mode="L").convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


# --- object keys ------------------------------------------------------------------------------


def _read_object(key: str, *, field: str, objects: ObjectStore, max_bytes: int) -> bytes:
    """Read a stored object, refusing keys that could escape the bucket or local folder."""
    try:
        check_object_key(key)
        return objects.get(key, max_bytes=max_bytes)
    except BadObjectKey as bad:
        raise JobError(
            "invalid_input",
            f"{field}: {quoted(key)} is not a valid object key: {bad}; expected a relative key "
            "such as 'originals/ab/abc.jpg'",
        ) from None
    except ObjectNotFound:
        raise JobError("not_found", f"{field}: no object {quoted(key)}") from None
    except ObjectTooLarge as large:
        raise JobError(
            "image_too_large",
            f"{field}: {large.size:,} bytes, over the limit of {max_bytes:,} bytes",
        ) from None
    except Exception:  # the store itself failed (down, timed out): not the client's doing
        raise JobError(
            "fetch_failed", f"{field}: the objects store did not answer for {quoted(key)}"
        ) from None
