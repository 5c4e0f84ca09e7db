"""Download an image from an http(s) URL without letting the URL reach inside (SPEC 2.1, 2.3).

A host is looked up once, by the resolver the fetcher is given; every address it resolves to must
pass the address policy (public only, unless private URLs are allowed), and the connection goes to
the checked address itself, so DNS cannot be rebound in between. One deadline covers the whole
download, redirects included, and every failure becomes a JobError whose message names the field.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse

from worker.errors import QUOTE_CHARS, JobError, quoted

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Connection = TypeVar("_Connection", bound=HTTPConnection)
# Whether the fetcher may connect to an address (when private URLs are not allowed).
AddressPolicy = Callable[[IPAddress], bool]

# a URL (or a redirect's Location) longer than this is refused, not followed
MAX_URL_CHARS = 2048
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# the deprecated IPv4-compatible form: ::127.0.0.1 is 127.0.0.1
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# IPv4-translated (RFC 2765) and local-use NAT64 (RFC 8215): IPv4 in the low 32 bits too
_IPV4_EMBEDDED = (ipaddress.IPv6Network("::ffff:0:0:0/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_CHUNK = 64 * 1024
# Characters left as they are when re-quoting a URL's path and query (RFC 3986 reserved + '%').
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


class Resolver(Protocol):
    """Looks a host name up: every address it has, in preference order (an OSError if none).

    Injected so tests can point a public-looking name at a loopback server or at private
    addresses without touching DNS."""

    def __call__(self, host: str, port: int, /) -> list[IPAddress]: ...


class FetchLimits(Protocol):
    """The bounds one download stays within (worker.intake.IntakeLimits is one)."""

    @property
    def max_bytes(self) -> int: ...

    @property
    def allow_private_urls(self) -> bool: ...

    @property
    def url_timeout_s(self) -> float: ...

    @property
    def max_redirects(self) -> int: ...


def system_resolver(host: str, port: int, /) -> list[IPAddress]:
    """The operating system's answer (getaddrinfo), each address once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
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


def is_loopback_host(host: str) -> bool:
    """Whether a listening address (a name or an IP) stays on this machine: what the dashboard
    and the MCP server accept without a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UrlFetcher:
    """GETs images from URLs within ``limits``, connecting only to addresses the policy allows.

    ``resolver`` and ``address_policy`` are the points tests inject (a fake lookup, a policy that
    also admits their loopback server); ``ca_certs`` is a CA bundle to trust instead of the
    system's, for a test server's throwaway certificate.
    """

    def __init__(
        self,
        limits: FetchLimits,
        *,
        resolver: Resolver = system_resolver,
        address_policy: AddressPolicy = is_public,
        ca_certs: str | None = None,
    ) -> None:
        self._limits = limits
        self._resolver = resolver
        self._address_policy = address_policy
        self._ca_certs = ca_certs

    def fetch(self, url: str, *, field: str) -> bytes:
        """The body of ``url`` after at most ``max_redirects`` redirects, each checked again."""
        limits = self._limits
        deadline = Deadline(limits.url_timeout_s)
        try:
            for _ in range(limits.max_redirects + 1):
                target = parse_url(url, field=field)
                addresses = self._checked_addresses(target, field)
                with _network_errors(target, field, limits, deadline):
                    pool, response = self._send(target, addresses, deadline, field)
                    try:
                        location = response.headers.get("Location")
                        if response.status in _REDIRECT_STATUSES and location:
                            url = _redirect_url(url, location, target, field)
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

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, field: str) -> int:
        """POST ``body`` to ``url``, the address checked as for a GET; the HTTP status. No
        redirect is followed (a webhook's answer is its status); the reply is read only up to
        ``max_bytes`` and within the deadline."""
        deadline = Deadline(self._limits.url_timeout_s)
        try:
            target = parse_url(url, field=field)
            addresses = self._checked_addresses(target, field)
            with _network_errors(target, field, self._limits, deadline):
                request = Request("POST", body, {"Content-Type": "application/json", **headers})
                pool, response = self._send(target, addresses, deadline, field, request)
                try:
                    with suppress(JobError):  # a long or slow reply does not undo the status
                        _read_body(response, deadline.at, field, self._limits)
                    return response.status
                finally:
                    response.close()
                    pool.close()
        finally:
            deadline.cancel()

    def _checked_addresses(self, target: Target, field: str) -> list[IPAddress]:
        """Resolve once and refuse the URL if any address fails the policy (unless private URLs
        are allowed): one bad address is enough, as the connection may go to any of them."""
        try:
            addresses = _known_addresses(target.host) or self._resolver(target.host, target.port)
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise JobError("fetch_failed", f"{field}: could not resolve host {quoted(target.host)}")
        if not self._limits.allow_private_urls:
            for address in addresses:
                if not self._address_policy(address):
                    raise JobError(
                        "url_not_allowed",
                        f"{field}: host {quoted(target.host)} is at non-public address {address}; "
                        "private, loopback, link-local and metadata addresses are refused",
                    )
        return addresses

    def _send(
        self,
        target: Target,
        addresses: list[IPAddress],
        deadline: Deadline,
        field: str,
        request: Request | None = None,
    ) -> tuple[HTTPConnectionPool, BaseHTTPResponse]:
        """Send the request (an image GET unless given) to the checked addresses in turn (never
        re-resolving the host name)."""
        request = request or Request("GET", None, {"Accept": "image/*"})
        refused: NewConnectionError | None = None
        for address in addresses:
            pool = pinned_pool(target, address, deadline, ca_certs=self._ca_certs)
            try:
                response = pool.urlopen(
                    request.method,
                    target.path,
                    body=request.body,
                    headers={
                        "Host": target.host_header,
                        "User-Agent": "mug-worker",
                        **request.headers,
                    },
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                    timeout=_remaining(deadline.at, field, self._limits),
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


@dataclass(frozen=True)
class Request:
    """What is sent: the method, a body (POST) and headers besides Host and User-Agent."""

    method: str
    body: bytes | None
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Target:
    """One parsed http(s) URL: where to connect, and what to send."""

    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    shown: str


def parse_url(url: str, *, field: str) -> Target:
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
    return Target(
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
    return shown if len(shown) <= QUOTE_CHARS else shown[: QUOTE_CHARS - 3] + "..."


def _redirect_url(url: str, location: str, target: Target, field: str) -> str:
    """Where a redirect points, refusing a Location or joined URL past MAX_URL_CHARS."""
    if len(location) > MAX_URL_CHARS:
        raise JobError(
            "fetch_failed",
            f"{field}: '{target.shown}' redirects to a Location of {len(location):,} characters; "
            f"at most {MAX_URL_CHARS}",
        )
    joined = urljoin(url, location)
    if len(joined) > MAX_URL_CHARS:
        raise JobError(
            "fetch_failed",
            f"{field}: '{target.shown}' redirects to a URL of over {MAX_URL_CHARS} characters",
        )
    return joined


def _known_addresses(host: str) -> list[IPAddress]:
    """What a host is without asking the resolver, so no resolver can make these public: an
    address literal is itself and localhost names are loopback (RFC 6761); [] for other names."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass  # a name, not an address literal
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [_LOOPBACK]
    return []


class Deadline:
    """One monotonic deadline over the whole fetch: every connection it opens is shut down when
    the deadline passes, so a server that trickles its status line or headers a byte at a time
    (each byte resetting the socket's read timeout) cannot hold the job past it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self._timers: list[threading.Timer] = []

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (never, for an infinite deadline)."""
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


def pinned_pool(
    target: Target, address: IPAddress, deadline: Deadline, *, ca_certs: str | None = None
) -> HTTPConnectionPool:
    """A one-connection pool to the checked IP itself (for https, TLS still verifies the host
    name), whose connections ``deadline`` shuts down; ``ca_certs`` replaces the system's CAs."""
    pool: HTTPConnectionPool
    if target.scheme == "https":
        pool = HTTPSConnectionPool(
            str(address),
            target.port,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
        pool.ConnectionCls = _watched(HTTPSConnection, deadline)
        return pool
    pool = HTTPConnectionPool(str(address), target.port, maxsize=1)
    pool.ConnectionCls = _watched(HTTPConnection, deadline)
    return pool


def _watched(base: type[_Connection], deadline: Deadline) -> type[_Connection]:
    """``base`` with its TCP socket handed to the deadline as soon as it exists (before TLS)."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            deadline.watch(sock)
            return sock

    return Watched


def _remaining(deadline: float, field: str, limits: FetchLimits) -> Timeout:
    """Connect/read timeouts that end at the download's overall deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(field, limits)
    return Timeout(connect=left, read=left)


def _timed_out(field: str, limits: FetchLimits) -> JobError:
    return JobError("fetch_failed", f"{field}: timed out after {limits.url_timeout_s:g} s")


def _read_body(
    response: BaseHTTPResponse, deadline: float, field: str, limits: FetchLimits
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
    target: Target, field: str, limits: FetchLimits, deadline: Deadline
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
            f"{field}: TLS with {quoted(target.host)} failed (certificate or handshake)",
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
