"""Image intake: every source, every mode, every limit (URL downloads: tests/test_fetch.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from pydantic import BaseModel, ValidationError

from storage.base import ObjectNotFound, ObjectTooLarge
from worker import intake
from worker.errors import JobError, describe_validation_error
from worker.intake import (
    DecodedImage,
    IntakeLimits,
    decode_base64,
    decode_bytes,
    read_image,
)
from worker.schemas import AnalyzeInput, FindSimilarInput, ImageSource
from worker.settings import Settings

LIMITS = IntakeLimits(
    max_bytes=2_000_000,
    max_pixels=4_000_000,
    allow_private_urls=False,
    url_timeout_s=2.0,
    max_redirects=3,
)
LOCAL = replace(LIMITS, allow_private_urls=True)


# --- helpers ----------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (40, 20), **params: object) -> bytes:
    return encode(Image.new("RGB", size, (200, 30, 30)), "JPEG", **params)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims the given size (and whose pixel data is missing)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def decode(data: bytes, limits: IntakeLimits = LIMITS) -> DecodedImage:
    return decode_bytes(data, field="image", source="base64", key=None, limits=limits)


def fails(code: str, call: Callable[[], object]) -> str:
    """Run ``call``, expect a JobError with ``code``, and return its message."""
    with pytest.raises(JobError) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value.message


class DictStore:
    """The ObjectStore protocol over a dict, recording which keys were read."""

    backend = "dict"

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        self.reads.append(key)
        try:
            data = self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLarge(key, len(data))
        return data

    def exists(self, key: str) -> bool:
        return key in self.objects

    def url(self, key: str) -> str:
        return key

    def ping(self) -> bool:
        return True


# --- limits and settings ----------------------------------------------------------------------


def test_limits_come_from_settings() -> None:
    settings_ = Settings(
        max_image_bytes=123,
        max_image_pixels=456,
        allow_private_urls=True,
        url_timeout_s=1.5,
        url_max_redirects=2,
    )
    assert IntakeLimits.from_settings(settings_) == IntakeLimits(123, 456, True, 1.5, 2)


# --- base64 -----------------------------------------------------------------------------------


def test_base64_decodes_to_rgb_with_checksum() -> None:
    data = jpeg()
    decoded = decode_base64(base64.b64encode(data).decode(), field="image", limits=LIMITS)
    assert (decoded.width, decoded.height) == (40, 20)
    assert decoded.image.mode == "RGB"
    assert decoded.format == "jpeg"
    assert (decoded.source, decoded.key) == ("base64", None)
    assert decoded.data == data
    assert decoded.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("prefix", ["data:image/png;base64,", "DATA:image/jpeg;BASE64,", ""])
def test_base64_accepts_data_url_prefix_and_line_breaks(prefix: str) -> None:
    data = encode(Image.new("RGB", (30, 30), "blue"))
    text = base64.encodebytes(data).decode()  # MIME style: a newline every 76 characters
    assert "\n" in text
    decoded = decode_base64(f"  {prefix}{text}  ", field="image", limits=LIMITS)
    assert decoded.data == data
    assert decoded.format == "png"


@pytest.mark.parametrize(
    "text",
    ["!!!!", "abc", "QQ", "aGVsbG8=aGVsbG8=", "Ää==", "data:image/png;base64,%%%%"],
)
def test_bad_base64_is_invalid_image(text: str) -> None:
    message = fails("invalid_image", lambda: decode_base64(text, field="image", limits=LIMITS))
    assert message.startswith("image: not valid base64")


def test_data_url_without_base64_is_invalid_image() -> None:
    message = fails(
        "invalid_image",
        lambda: decode_base64("data:image/png,abcd", field="images[0].image", limits=LIMITS),
    )
    assert message.startswith("images[0].image: a data URL must")


@pytest.mark.parametrize("text", ["", "   \n", "data:image/png;base64,"])
def test_empty_base64_is_invalid_image(text: str) -> None:
    message = fails("invalid_image", lambda: decode_base64(text, field="image", limits=LIMITS))
    assert "empty" in message


def test_base64_size_is_checked_before_decoding() -> None:
    # Not even valid base64: only a check made before decoding can say "too large" here.
    text = "!" * 4000
    limits = replace(LIMITS, max_bytes=1000)
    message = fails("image_too_large", lambda: decode_base64(text, field="image", limits=limits))
    assert message.startswith("image: about 3,000 bytes")


def test_decoded_bytes_over_the_limit_are_too_large() -> None:
    data = jpeg((64, 64))
    limits = replace(LIMITS, max_bytes=len(data) - 1)
    fails("image_too_large", lambda: decode(data, limits))
    assert decode(data, replace(LIMITS, max_bytes=len(data))).data == data


# --- decoding ---------------------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode(jpeg((40, 20), exif=exif))
    assert (decoded.width, decoded.height) == (20, 40)


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_supported_formats(fmt: str, name: str) -> None:
    decoded = decode(encode(Image.new("RGB", (12, 8), "green"), fmt))
    assert (decoded.format, decoded.width, decoded.height) == (name, 12, 8)


def pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    return [image.getpixel((x, 0)) for x in range(image.width)]  # type: ignore[misc]


def test_greyscale_and_bilevel_become_rgb() -> None:
    assert pixels(decode(encode(Image.new("L", (1, 1), 77))).image) == [(77, 77, 77)]
    assert pixels(decode(encode(Image.new("1", (1, 1), 1))).image) == [(255, 255, 255)]


def test_palette_with_transparency_is_composited_over_white() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    decoded = decode(encode(image, transparency=0))
    assert pixels(decoded.image) == [(255, 255, 255), (0, 0, 255)]


def test_rgba_and_la_are_composited_over_white() -> None:
    rgba = Image.new("RGBA", (3, 1))
    for x, value in enumerate([(255, 0, 0, 0), (255, 0, 0, 255), (0, 0, 0, 128)]):
        rgba.putpixel((x, 0), value)
    assert pixels(decode(encode(rgba)).image) == [(255, 255, 255), (255, 0, 0), (127, 127, 127)]
    assert pixels(decode(encode(Image.new("LA", (1, 1), (0, 0)))).image) == [(255, 255, 255)]


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (3, 1))
    for x, value in enumerate([0, 32768, 65535]):
        image.putpixel((x, 0), value)
    decoded = decode(encode(image))
    assert pixels(decoded.image) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_other_deep_modes_are_scaled_or_clipped() -> None:
    big_endian = Image.frombytes("I;16B", (3, 1), bytes([0, 0, 128, 0, 255, 255]))
    assert pixels(intake._to_rgb(big_endian)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    signed = Image.frombytes("I", (2, 1), struct.pack("<2i", -5, 70000))
    assert pixels(intake._to_rgb(signed)) == [(0, 0, 0), (255, 255, 255)]
    floats = Image.frombytes("F", (3, 1), struct.pack("<3f", -3.0, 100.4, 300.0))
    assert pixels(intake._to_rgb(floats)) == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100)
    decoded = decode(data)
    assert decoded.image.mode == "RGB"
    red, green, blue = decoded.image.getpixel((4, 4))  # type: ignore[misc]
    assert red > 240
    assert green < 15
    assert blue < 15


def test_huge_dimensions_are_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(self: Image.Image) -> None:
        raise AssertionError("pixel data must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    message = fails("image_too_large", lambda: decode(png_header(5000, 4000)))
    assert message == "image: 5000x4000 = 20,000,000 pixels, over the limit of 4,000,000"
    # Past PIL's own decompression-bomb limit: still image_too_large, never a MemoryError.
    big = replace(LIMITS, max_pixels=50_000_000)
    fails("image_too_large", lambda: decode(png_header(100_000, 100_000), big))
    fails("image_too_large", lambda: decode(png_header(10_000, 10_000), big))


def test_pixels_at_the_limit_are_accepted() -> None:
    limits = replace(LIMITS, max_pixels=12 * 8)
    assert decode(encode(Image.new("RGB", (12, 8))), limits).width == 12
    fails("image_too_large", lambda: decode(encode(Image.new("RGB", (12, 9))), limits))


@pytest.mark.parametrize("data", [b"hello, world", b"\x00" * 64, b"<html></html>", b"\xff\xd8"])
def test_non_image_bytes_are_invalid_image(data: bytes) -> None:
    message = fails("invalid_image", lambda: decode(data))
    assert message.startswith("image: ")


def test_zero_bytes_are_invalid_image() -> None:
    assert "0 bytes" in fails("invalid_image", lambda: decode(b""))


def test_truncated_jpeg_is_invalid_image() -> None:
    noise = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
    data = encode(noise, "JPEG", quality=95)
    message = fails("invalid_image", lambda: decode(data[: len(data) // 2]))
    assert "truncated or corrupt JPEG" in message


def test_unsupported_format_is_named() -> None:
    data = encode(Image.new("P", (4, 4)), "GIF")
    message = fails("invalid_image", lambda: decode(data))
    assert message == "image: unsupported format 'GIF'; expected JPEG, PNG, WebP or HEIC"


FAKE_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32


def test_damaged_heic_is_invalid_image() -> None:
    assert intake._heif_supported()  # pi-heif is a requirement
    fails("invalid_image", lambda: decode(FAKE_HEIC))


SAMPLES = [jpeg((16, 16)), encode(Image.new("RGBA", (16, 16), (1, 2, 3, 4)))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(1, 10_000),
)
def test_damaged_images_never_raise_anything_but_job_error(
    sample: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(sample[:cut])
    for position, value in edits:
        data[position % len(data)] = value
    try:
        outcome = decode(bytes(data)).image.mode
    except JobError as exc:
        outcome = exc.code
        if exc.code == "invalid_input":
            # a damaged header may give any size: one longer than 20:1 is refused by its shape
            assert "times as long as it is wide" in exc.message, exc.message
            outcome = "too_long"
    assert outcome in {"RGB", "invalid_image", "image_too_large", "too_long"}


# --- object keys ------------------------------------------------------------------------------


def test_image_key_reads_the_store() -> None:
    data = jpeg()
    store = DictStore({"desks/a.jpg": data})
    decoded = read_image(
        ImageSource(image_key="desks/a.jpg"),
        field_prefix="",
        limits=LIMITS,
        objects=store,
    )
    assert (decoded.source, decoded.key, decoded.data) == ("key", "desks/a.jpg", data)


def test_a_key_over_the_byte_limit_is_refused_before_it_is_read() -> None:
    store = DictStore({"big.jpg": b"x" * (LIMITS.max_bytes + 1)})
    message = fails(
        "image_too_large",
        lambda: read_image(
            ImageSource(image_key="big.jpg"),
            field_prefix="images[2].",
            limits=LIMITS,
            objects=store,
        ),
    )
    assert message.startswith("images[2].image_key: ")


def test_missing_key_is_not_found() -> None:
    store = DictStore({})
    message = fails(
        "not_found",
        lambda: read_image(
            ImageSource(image_key="x/y.jpg"),
            field_prefix="",
            limits=LIMITS,
            objects=store,
        ),
    )
    assert message == "image_key: no object 'x/y.jpg'"


@pytest.mark.parametrize("key", ["", "../x", "a/../../b", "..", "/etc/passwd", "a\\b", "a\0b"])
def test_unsafe_keys_are_refused_before_the_store(key: str) -> None:
    store = DictStore({key: jpeg()})
    message = fails(
        "invalid_input",
        lambda: read_image(
            ImageSource(image_key=key),
            field_prefix="images[2].",
            limits=LIMITS,
            objects=store,
        ),
    )
    assert message.startswith("images[2].image_key: ")
    assert store.reads == []


def test_long_keys_are_quoted_short() -> None:
    message = fails(
        "not_found",
        lambda: read_image(
            ImageSource(image_key="k" * 500),
            field_prefix="",
            limits=LIMITS,
            objects=DictStore({}),
        ),
    )
    assert len(message) < 100


# --- choosing the source ----------------------------------------------------------------------
# The request schemas let exactly one string source through; read_image takes that as given.


def schema_error(model: type[BaseModel], payload: Mapping[str, object]) -> str:
    """The invalid_input message a job with ``payload`` gets (as worker.actions words it)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(payload)
    return describe_validation_error(caught.value)


@pytest.mark.parametrize(
    "sources",
    [{}, {"image": "AAAA", "image_url": "http://x/"}, {"image": "a", "image_key": "b"}],
)
def test_exactly_one_source(sources: dict[str, str]) -> None:
    message = schema_error(AnalyzeInput, sources)
    assert message.startswith("give exactly one of 'image', 'image_url', 'image_key' or 'images'")
    for name in sources:
        assert name in message.partition("got")[2]
    batch = {"images": [{"image": "AAAA"}] * 3 + [sources]}
    assert schema_error(AnalyzeInput, batch) == (
        "images.3: give exactly one of 'image', 'image_url' or 'image_key'"
    )
    similar = {"action": "find_similar", **sources}
    assert schema_error(FindSimilarInput, similar).startswith("give exactly one of 'image'")


def test_a_source_must_be_a_string() -> None:
    assert schema_error(AnalyzeInput, {"image": 123}) == "image: Input should be a valid string"
    assert schema_error(AnalyzeInput, {"images": [{"image_url": 123}]}) == (
        "images.0.image_url: Input should be a valid string"
    )


def test_field_prefix_names_the_batch_item() -> None:
    message = fails(
        "url_not_allowed",
        lambda: read_image(
            ImageSource(image_url="ftp://example.com/a.jpg"),
            field_prefix="images[3].",
            limits=LIMITS,
            objects=DictStore({}),
        ),
    )
    assert message.startswith("images[3].image_url: ")
