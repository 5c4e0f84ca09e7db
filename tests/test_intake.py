"""Image intake: every source, every mode, every limit, and URL safety (loopback servers only)."""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import io
import ipaddress
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from urllib3 import HTTPSConnectionPool

from storage.base import ObjectNotFound, ObjectTooLarge
from worker import intake
from worker.errors import JobError
from worker.intake import (
    DecodedImage,
    IntakeLimits,
    decode_base64,
    decode_bytes,
    fetch_url,
    read_image,
)
from worker.settings import Settings

LIMITS = IntakeLimits(
    max_bytes=2_000_000,
    max_pixels=4_000_000,
    allow_private_urls=False,
    url_timeout_s=2.0,
    max_redirects=3,
)
LOCAL = replace(LIMITS, allow_private_urls=True)
LOOPBACK = ipaddress.ip_address("127.0.0.1")


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


Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving ``routes``; records (path, Host) per request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                route = server.routes.get(self.path.partition("?")[0])
                try:
                    if route is None:
                        self.send_error(404)
                    else:
                        route(self)
                except OSError:
                    pass  # the client hung up early, as it should on an oversized body

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def respond(body: bytes, *, status: int = 200, content_length: bool = True) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "image/jpeg")
        if content_length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.thread.start()
    yield local
    local.release.set()
    local.httpd.shutdown()
    local.httpd.server_close()
    local.thread.join(timeout=5)


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the loopback test server pass the address check as if it were a public host."""
    real = intake._is_public
    monkeypatch.setattr(intake, "_is_public", lambda address: address == LOOPBACK or real(address))


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
    assert outcome in {"RGB", "invalid_image", "image_too_large"}


# --- object keys ------------------------------------------------------------------------------


def test_image_key_reads_the_store() -> None:
    data = jpeg()
    store = DictStore({"desks/a.jpg": data})
    decoded = read_image(
        image=None,
        image_url=None,
        image_key="desks/a.jpg",
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
            image=None,
            image_url=None,
            image_key="big.jpg",
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
            image=None,
            image_url=None,
            image_key="x/y.jpg",
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
            image=None,
            image_url=None,
            image_key=key,
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
            image=None,
            image_url=None,
            image_key="k" * 500,
            field_prefix="",
            limits=LIMITS,
            objects=DictStore({}),
        ),
    )
    assert len(message) < 100


# --- choosing the source ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sources",
    [{}, {"image": "AAAA", "image_url": "http://x/"}, {"image": "a", "image_key": "b"}],
)
def test_exactly_one_source(sources: dict[str, str]) -> None:
    given = {"image": None, "image_url": None, "image_key": None} | sources
    message = fails(
        "invalid_input",
        lambda: read_image(
            **given, field_prefix="images[3].", limits=LIMITS, objects=DictStore({})
        ),
    )
    assert "images[3].image / images[3].image_url / images[3].image_key" in message
    for name in sources:
        assert f"images[3].{name}" in message.partition("got")[2]


def test_a_source_must_be_a_string() -> None:
    message = fails(
        "invalid_input",
        lambda: read_image(
            image=123,  # type: ignore[arg-type]
            image_url=None,
            image_key=None,
            field_prefix="",
            limits=LIMITS,
            objects=DictStore({}),
        ),
    )
    assert message == "image: expected a string, got int"


def test_field_prefix_names_the_batch_item() -> None:
    message = fails(
        "url_not_allowed",
        lambda: read_image(
            image=None,
            image_url="ftp://example.com/a.jpg",
            image_key=None,
            field_prefix="images[3].",
            limits=LIMITS,
            objects=DictStore({}),
        ),
    )
    assert message.startswith("images[3].image_url: ")


# --- URLs: refusals before any connection -----------------------------------------------------


def fetch(url: str, limits: IntakeLimits = LIMITS) -> bytes:
    return fetch_url(url, field="image_url", limits=limits)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/a.jpg",
    ],
)
def test_only_http_and_https(url: str) -> None:
    message = fails("url_not_allowed", lambda: fetch(url))
    assert message.startswith("image_url: only http and https")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",  # 127.0.0.1 written as a number
        "0.0.0.0",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "224.0.0.1",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fd00::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused(host: str) -> None:
    message = fails("url_not_allowed", lambda: fetch(f"http://{host}/a.jpg"))
    assert "non-public address" in message


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass_the_check(address: str) -> None:
    assert intake._is_public(ipaddress.ip_address(address))


def test_refused_before_connecting(server: LocalServer) -> None:
    fails("url_not_allowed", lambda: fetch(server.url("/a.jpg")))
    assert server.requests == []


def test_messages_hide_credentials_and_query() -> None:
    message = fails(
        "url_not_allowed",
        lambda: fetch("https://user:hunter2@10.0.0.1/" + "p" * 200 + ".jpg?X-Amz-Signature=SECRET"),
    )
    assert "hunter2" not in message
    assert "SECRET" not in message


def test_unresolvable_host_is_fetch_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    message = fails("fetch_failed", lambda: fetch("https://no-such-host.example/a.jpg"))
    assert message == "image_url: could not resolve host 'no-such-host.example'"


def test_https_connects_to_the_ip_but_verifies_the_host_name() -> None:
    target = intake._parse_url("https://images.example.com/a.jpg", "image_url")
    pool = intake._pool(target, ipaddress.ip_address("93.184.216.34"))
    assert isinstance(pool, HTTPSConnectionPool)
    assert pool.host == "93.184.216.34"
    assert pool.assert_hostname == "images.example.com"
    assert pool.conn_kw["server_hostname"] == "images.example.com"
    assert pool.cert_reqs == "CERT_REQUIRED"


# --- URLs: against a loopback server ----------------------------------------------------------


def test_url_success(server: LocalServer) -> None:
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    decoded = read_image(
        image=None,
        image_url=server.url("/a.jpg?size=large"),
        image_key=None,
        field_prefix="",
        limits=LOCAL,
        objects=DictStore({}),
    )
    assert (decoded.source, decoded.key, decoded.data) == ("url", None, data)
    assert server.requests == [("/a.jpg?size=large", f"127.0.0.1:{server.port}")]


def test_body_without_content_length(server: LocalServer) -> None:
    data = jpeg()
    server.routes["/a.jpg"] = respond(data, content_length=False)
    assert fetch(server.url("/a.jpg"), LOCAL) == data


def test_connects_to_the_checked_address_with_the_original_host(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, loopback_is_public: None
) -> None:
    # The name resolves once, to the checked address; a second lookup would fail.
    monkeypatch.setattr(intake, "_resolve", lambda host, port: [LOOPBACK])
    real_getaddrinfo = socket.getaddrinfo

    def only_numeric(host: str, *args: object, **kwargs: object) -> object:
        assert host != "images.test", "the host name was resolved a second time"
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", only_numeric)
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    assert fetch(f"http://images.test:{server.port}/a.jpg") == data
    assert server.requests == [("/a.jpg", f"images.test:{server.port}")]


def test_relative_redirect_is_followed(server: LocalServer) -> None:
    data = jpeg()
    server.routes["/old"] = redirect("/new.jpg", 301)
    server.routes["/new.jpg"] = respond(data)
    assert fetch(server.url("/old"), LOCAL) == data


@pytest.mark.parametrize(
    "location",
    ["http://10.0.0.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/"],
)
def test_redirect_to_a_private_address_is_refused(
    server: LocalServer, loopback_is_public: None, location: str
) -> None:
    server.routes["/go"] = redirect(location)
    message = fails("url_not_allowed", lambda: fetch(server.url("/go")))
    assert "non-public address" in message
    assert [path for path, _ in server.requests] == ["/go"]


def test_redirect_to_another_scheme_is_refused(
    server: LocalServer, loopback_is_public: None
) -> None:
    server.routes["/go"] = redirect("file:///etc/passwd", 307)
    fails("url_not_allowed", lambda: fetch(server.url("/go")))


def test_too_many_redirects(server: LocalServer) -> None:
    server.routes["/loop"] = redirect("/loop")
    message = fails("fetch_failed", lambda: fetch(server.url("/loop"), LOCAL))
    assert message == "image_url: more than 3 redirects"
    assert len(server.requests) == 4


def test_http_error_status_is_fetch_failed(server: LocalServer) -> None:
    message = fails("fetch_failed", lambda: fetch(server.url("/missing.jpg?token=SECRET"), LOCAL))
    assert message == f"image_url: HTTP 404 from 'http://127.0.0.1:{server.port}/missing.jpg'"


def test_connection_refused_is_fetch_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = fails("fetch_failed", lambda: fetch(f"http://127.0.0.1:{port}/a.jpg", LOCAL))
    assert "could not connect" in message


def test_slow_server_times_out(server: LocalServer) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        server.release.wait(5)
        respond(b"late")(handler)

    server.routes["/slow"] = slow
    limits = replace(LOCAL, url_timeout_s=0.5)
    started = time.monotonic()
    message = fails("fetch_failed", lambda: fetch(server.url("/slow"), limits))
    assert message == "image_url: timed out after 0.5 s"
    assert time.monotonic() - started < 1.5


def test_trickling_body_hits_the_overall_deadline(server: LocalServer) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            if server.release.wait(0.1):
                return

    server.routes["/trickle"] = trickle
    limits = replace(LOCAL, url_timeout_s=0.5)
    started = time.monotonic()
    message = fails("fetch_failed", lambda: fetch(server.url("/trickle"), limits))
    assert message == "image_url: timed out after 0.5 s"
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("content_length", [True, False])
def test_body_over_the_limit_is_too_large(server: LocalServer, content_length: bool) -> None:
    server.routes["/big"] = respond(b"x" * 300_000, content_length=content_length)
    limits = replace(LOCAL, max_bytes=1000)
    message = fails("image_too_large", lambda: fetch(server.url("/big"), limits))
    assert message.startswith("image_url: ")


def make_tls_files(folder: Path, host: str) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for ``host``: (CA file, server cert+key file)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(
        name: str, public_key: ec.EllipticCurvePublicKey, issuer: x509.Name | None, *, ca: bool
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

    ca_cert = certificate("Test CA", ca_key.public_key(), None, ca=True)
    cert = certificate(host, key.public_key(), ca_cert.subject, ca=False)
    pem = serialization.Encoding.PEM
    ca_file, server_file = folder / "ca.pem", folder / "server.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    server_file.write_bytes(
        cert.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, server_file


def test_https_verifies_the_host_name_while_connecting_to_the_ip(
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    loopback_is_public: None,
    tmp_path: Path,
) -> None:
    ca_file, server_file = make_tls_files(tmp_path, "images.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_file)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    monkeypatch.setattr(intake, "_resolve", lambda host, port: [LOOPBACK])
    monkeypatch.setattr(
        intake, "HTTPSConnectionPool", functools.partial(HTTPSConnectionPool, ca_certs=str(ca_file))
    )
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    assert fetch(f"https://images.test:{server.port}/a.jpg") == data
    message = fails("fetch_failed", lambda: fetch(f"https://other.test:{server.port}/a.jpg"))
    assert message == "image_url: TLS with 'other.test' failed (certificate or handshake)"
