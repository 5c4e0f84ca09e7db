"""Turn one image source (base64, URL or object key) into a decoded RGB image (SPEC 2.1, 2.3).

Everything here handles untrusted input: sizes are checked before work is done, URLs are only
fetched from public addresses (the checked address is the one connected to, so DNS cannot be
rebound in between), and every failure becomes a JobError whose message names the field.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import ipaddress
import math
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urljoin, urlsplit

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse

from storage.base import ObjectNotFound, ObjectStore, ObjectTooLarge
from storage.keys import BadObjectKey, check_object_key
from worker.errors import JobError

if TYPE_CHECKING:
    from worker.settings import Settings

Source = Literal["base64", "url", "key"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# PIL format name -> the name reported in results; MPO is a multi-picture JPEG (phone cameras).
_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# the deprecated IPv4-compatible form: ::127.0.0.1 is 127.0.0.1
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# IPv4-translated (RFC 2765) and local-use NAT64 (RFC 8215): IPv4 in the low 32 bits too
_IPV4_EMBEDDED = (ipaddress.IPv6Network("::ffff:0:0:0/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# a URL (or a redirect's Location) longer than this is refused, not followed
MAX_URL_CHARS = 2048
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
_CHUNK = 64 * 1024
# the longest side at most this many times the shortest (panoramas are ~4:1)
MAX_ASPECT_RATIO = 20
_QUOTE_CHARS = 60
# Characters left as they are when re-quoting a URL's path and query (RFC 3986 reserved + '%').
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


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
    """The bounds one image must stay within; separate from Settings so tests can vary them."""

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
    *,
    image: str | None,
    image_url: str | None,
    image_key: str | None,
    field_prefix: str,
    limits: IntakeLimits,
    objects: ObjectStore,
) -> DecodedImage:
    """Decode the one source given; ``field_prefix`` (e.g. "images[3].") scopes the messages."""
    given = {
        name: value
        for name, value in (
            ("image", image),
            ("image_url", image_url),
            ("image_key", image_key),
        )
        if value is not None
    }
    if len(given) != 1:
        got = " and ".join(f"{field_prefix}{name}" for name in given) or "none"
        raise JobError(
            "invalid_input",
            f"{field_prefix}image / {field_prefix}image_url / {field_prefix}image_key: "
            f"give exactly one image source, got {got}",
        )
    name, value = given.popitem()
    field = f"{field_prefix}{name}"
    if not isinstance(value, str):
        raise JobError("invalid_input", f"{field}: expected a string, got {type(value).__name__}")
    if name == "image":
        return decode_base64(value, field=field, limits=limits)
    if name == "image_url":
        data = fetch_url(value, field=field, limits=limits)
        return decode_bytes(data, field=field, source="url", key=None, limits=limits)
    return decode_bytes(
        _read_object(value, field=field, objects=objects, max_bytes=limits.max_bytes),
        field=field,
        source="key",
        key=value,
        limits=limits,
    )


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
        import pi_heif  # type: ignore[import-not-found]
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
            f"{field}: {_quote(key)} is not a valid object key: {bad}; expected a relative key "
            "such as 'originals/ab/abc.jpg'",
        ) from None
    except ObjectNotFound:
        raise JobError("not_found", f"{field}: no object {_quote(key)}") from None
    except ObjectTooLarge as large:
        raise JobError(
            "image_too_large",
            f"{field}: {large.size:,} bytes, over the limit of {max_bytes:,} bytes",
        ) from None
    except Exception:  # the store itself failed (down, timed out): not the client's doing
        raise JobError(
            "fetch_failed", f"{field}: the objects store did not answer for {_quote(key)}"
        ) from None


def _quote(text: str) -> str:
    """Quote user text in a message, cut short so payloads never land in messages or logs."""
    shown = text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."
    return "'" + shown.replace("\0", "\\0") + "'"


# --- URLs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One parsed http(s) URL: where to connect, and what to send."""

    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    shown: str


class _Deadline:
    """One monotonic deadline over the whole fetch: every connection it opens is shut down when
    the deadline passes, so a server that trickles its status line or headers a byte at a time
    (each byte resetting the socket's read timeout) cannot hold the job past it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self._timers: list[threading.Timer] = []

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def watch(self, sock: socket.socket) -> None:
        if math.isinf(self.at):
            return
        timer = threading.Timer(max(0.0, self.at - time.monotonic()), _shut, (sock,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


def fetch_url(url: str, *, field: str, limits: IntakeLimits) -> bytes:
    """GET an image from a public http(s) URL within the time, byte and redirect limits."""
    deadline = _Deadline(limits.url_timeout_s)
    try:
        for _ in range(limits.max_redirects + 1):
            target = _parse_url(url, field)
            addresses = _checked_addresses(target, field, limits)
            with _network_errors(target, field, limits, deadline):
                pool, response = _send(target, addresses, deadline, field, limits)
                try:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECT_STATUSES and location:
                        if len(location) > MAX_URL_CHARS:
                            raise JobError(
                                "fetch_failed",
                                f"{field}: '{target.shown}' redirects to a Location of "
                                f"{len(location):,} characters; at most {MAX_URL_CHARS}",
                            )
                        url = urljoin(url, location)
                        if len(url) > MAX_URL_CHARS:
                            raise JobError(
                                "fetch_failed",
                                f"{field}: '{target.shown}' redirects to a URL of over "
                                f"{MAX_URL_CHARS} characters",
                            )
                        continue
                    if not 200 <= response.status < 300:
                        raise JobError(
                            "fetch_failed",
                            f"{field}: HTTP {response.status} from '{target.shown}'",
                        )
                    return _read_body(response, deadline.at, field, limits)
                finally:
                    response.close()
                    pool.close()
        raise JobError("fetch_failed", f"{field}: more than {limits.max_redirects} redirects")
    finally:
        deadline.cancel()


def _parse_url(url: str, field: str) -> _Target:
    """Split a URL, allowing only http(s); the path is re-quoted so spaces etc. cannot break it."""
    if len(url) > MAX_URL_CHARS:
        raise JobError("invalid_input", f"{field}: URLs are at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        # "localhost." is "localhost": a trailing dot only says the name is fully qualified
        host = (parts.hostname or "").removesuffix(".").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise JobError("invalid_input", f"{field}: not a valid URL: {_show_url(url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        got = f"'{scheme[:20]}'" if scheme else "no scheme"
        raise JobError(
            "url_not_allowed",
            f"{field}: only http and https URLs are allowed, got {got}",
        )
    if not host:
        raise JobError("invalid_input", f"{field}: the URL has no host: {_show_url(url)}")
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    bracketed = f"[{host}]" if ":" in host else host
    path = quote(parts.path, safe=_URL_SAFE) or "/"
    if parts.query:
        path += "?" + quote(parts.query, safe=_URL_SAFE)
    return _Target(
        scheme=scheme,
        host=host,
        port=port,
        host_header=bracketed if port == default_port else f"{bracketed}:{port}",
        path=path,
        shown=_show_url(url),
    )


def _show_url(url: str) -> str:
    """A URL as messages may show it: no credentials, query or fragment, and cut short."""
    try:
        parts = urlsplit(url.strip())
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    except ValueError:
        shown = url.partition("?")[0]
    return shown if len(shown) <= _QUOTE_CHARS else shown[: _QUOTE_CHARS - 3] + "..."


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order (one lookup per hop)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass  # a name, not an address literal
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]  # loopback by definition (RFC 6761)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def _is_public(address: IPAddress) -> bool:
    """Globally routable, judging IPv6 forms that embed an IPv4 address by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif (
            address in _NAT64
            or any(address in network for network in _IPV4_EMBEDDED)
            or (address in _IPV4_COMPATIBLE and int(address) > 1)
        ):
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_global and not address.is_multicast


def _checked_addresses(target: _Target, field: str, limits: IntakeLimits) -> list[IPAddress]:
    """Resolve once and refuse the URL if any address is private (unless private URLs are on)."""
    try:
        addresses = _resolve(target.host, target.port)
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise JobError("fetch_failed", f"{field}: could not resolve host {_quote(target.host)}")
    if not limits.allow_private_urls:
        for address in addresses:
            if not _is_public(address):
                raise JobError(
                    "url_not_allowed",
                    f"{field}: host {_quote(target.host)} is at non-public address {address}; "
                    "private, loopback, link-local and metadata addresses are refused",
                )
    return addresses


def _send(
    target: _Target,
    addresses: list[IPAddress],
    deadline: _Deadline,
    field: str,
    limits: IntakeLimits,
) -> tuple[HTTPConnectionPool, BaseHTTPResponse]:
    """Send the GET to the checked addresses in turn (never re-resolving the host name)."""
    refused: NewConnectionError | None = None
    for address in addresses:
        pool = _pool(target, address, deadline)
        try:
            response = pool.urlopen(
                "GET",
                target.path,
                headers={
                    "Host": target.host_header,
                    "User-Agent": "mug-worker",
                    "Accept": "image/*",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
                timeout=_remaining(deadline.at, field, limits),
            )
        except NewConnectionError as exc:
            pool.close()
            refused = exc
            continue
        except BaseException:
            pool.close()
            raise
        return pool, response
    assert refused is not None  # _checked_addresses never returns an empty list
    raise refused


def _pool(
    target: _Target, address: IPAddress, deadline: _Deadline | None = None
) -> HTTPConnectionPool:
    """A one-connection pool to the IP itself (for https, TLS still checks the host name), whose
    connections the deadline shuts down."""
    deadline = deadline or _Deadline(math.inf)
    pool: HTTPConnectionPool
    if target.scheme == "https":
        pool = HTTPSConnectionPool(
            str(address),
            target.port,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
        pool.ConnectionCls = _watched(HTTPSConnection, deadline)
        return pool
    pool = HTTPConnectionPool(str(address), target.port, maxsize=1)
    pool.ConnectionCls = _watched(HTTPConnection, deadline)
    return pool


def _watched(base: type[HTTPConnection], deadline: _Deadline) -> type[HTTPConnection]:
    """``base`` with its TCP socket handed to the deadline as soon as it exists (before TLS)."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.watch(sock)
            return sock

    return Watched


def _remaining(deadline: float, field: str, limits: IntakeLimits) -> Timeout:
    """Connect/read timeouts that end at the download's overall deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(field, limits)
    return Timeout(connect=left, read=left)


def _timed_out(field: str, limits: IntakeLimits) -> JobError:
    return JobError("fetch_failed", f"{field}: timed out after {limits.url_timeout_s:g} s")


def _read_body(
    response: BaseHTTPResponse, deadline: float, field: str, limits: IntakeLimits
) -> bytes:
    """Stream the body, stopping as soon as it passes max_bytes or the deadline.

    The deadline is checked between reads (``read1`` returns whatever one receive gave), so a
    trickling server is cut off on time; a single stalled read still ends at the read timeout.
    """
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limits.max_bytes:
        raise JobError(
            "image_too_large",
            f"{field}: {int(length):,} bytes, over the limit of {limits.max_bytes:,} bytes",
        )
    body = bytearray()
    while True:
        if time.monotonic() >= deadline:
            raise _timed_out(field, limits)
        chunk = response.read1(_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limits.max_bytes:
            raise JobError(
                "image_too_large",
                f"{field}: more than {limits.max_bytes:,} bytes, over the limit",
            )


@contextmanager
def _network_errors(
    target: _Target, field: str, limits: IntakeLimits, deadline: _Deadline
) -> Iterator[None]:
    """Map transport failures to fetch_failed without quoting library messages (they hold URLs);
    any failure once the deadline has passed is the deadline's doing (it shut the socket)."""
    try:
        try:
            yield
        except JobError:
            raise
        except Exception:
            if deadline.passed():
                raise _timed_out(field, limits) from None
            raise
    except NewConnectionError:
        raise JobError("fetch_failed", f"{field}: could not connect to '{target.shown}'") from None
    except (Urllib3TimeoutError, TimeoutError):
        raise _timed_out(field, limits) from None
    except SSLError:
        raise JobError(
            "fetch_failed",
            f"{field}: TLS with {_quote(target.host)} failed (certificate or handshake)",
        ) from None
    except ProtocolError:
        raise JobError(
            "fetch_failed", f"{field}: connection to '{target.shown}' broke off"
        ) from None
    except (HTTPError, OSError) as exc:
        raise JobError(
            "fetch_failed",
            f"{field}: download from '{target.shown}' failed ({type(exc).__name__})",
        ) from None
