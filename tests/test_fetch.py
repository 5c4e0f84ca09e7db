"""URL downloads (worker.fetch): refusals before any connection, then loopback servers only.

No test touches DNS or the network: URLs name address literals or a fake resolver answers for
the name, and an address policy that also admits 127.0.0.1 lets a loopback server play a public
host (the fetcher's injection points, not patches of its internals).
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from urllib3 import HTTPSConnectionPool

from tests.test_intake import LIMITS, LOCAL, DictStore, fails, jpeg
from worker.fetch import (
    Deadline,
    FetchLimits,
    IPAddress,
    Resolver,
    UrlFetcher,
    is_public,
    parse_url,
    pinned_pool,
    system_resolver,
)
from worker.intake import read_image
from worker.schemas import ImageSource

LOOPBACK = ipaddress.ip_address("127.0.0.1")


# --- helpers ----------------------------------------------------------------------------------


def fetch(url: str, limits: FetchLimits = LIMITS) -> bytes:
    return UrlFetcher(limits).fetch(url, field="image_url")


def loopback_is_public(address: IPAddress) -> bool:
    """An address policy that lets the loopback test server pass as if it were a public host."""
    return address == LOOPBACK or is_public(address)


class FakeResolver:
    """Answers every name with ``addresses`` (or raises ``error``), recording each lookup."""

    def __init__(self, *addresses: str, error: OSError | None = None) -> None:
        self.addresses = [ipaddress.ip_address(address) for address in addresses]
        self.error = error
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, /) -> list[IPAddress]:
        self.lookups.append((host, port))
        if self.error is not None:
            raise self.error
        return self.addresses


def as_public_host(resolver: Resolver, *, ca_certs: str | None = None) -> UrlFetcher:
    """A fetcher (private URLs off) whose names resolve through ``resolver`` and that treats
    the loopback server as public."""
    return UrlFetcher(
        LIMITS, resolver=resolver, address_policy=loopback_is_public, ca_certs=ca_certs
    )


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


# --- refusals before any connection ----------------------------------------------------------


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
    assert is_public(ipaddress.ip_address(address))


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


def test_unresolvable_host_is_fetch_failed() -> None:
    no_dns = FakeResolver(error=socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    message = fails(
        "fetch_failed",
        lambda: UrlFetcher(LIMITS, resolver=no_dns).fetch(
            "https://no-such-host.example/a.jpg", field="image_url"
        ),
    )
    assert message == "image_url: could not resolve host 'no-such-host.example'"
    assert no_dns.lookups == [("no-such-host.example", 443)]
    empty = UrlFetcher(LIMITS, resolver=FakeResolver())
    message = fails("fetch_failed", lambda: empty.fetch("http://x.example/", field="image_url"))
    assert message == "image_url: could not resolve host 'x.example'"


def test_the_system_resolver_asks_getaddrinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    assert system_resolver("127.0.0.1", 80) == [LOOPBACK]

    def no_dns(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    message = fails("fetch_failed", lambda: fetch("https://no-such-host.example/a.jpg"))
    assert message == "image_url: could not resolve host 'no-such-host.example'"


@pytest.mark.parametrize(
    "addresses",
    [("10.0.0.1",), ("169.254.169.254",), ("::1",), ("93.184.216.34", "192.168.1.1")],
)
def test_a_public_looking_name_at_a_private_address_is_refused(addresses: tuple[str, ...]) -> None:
    resolver = FakeResolver(*addresses)
    fetcher = UrlFetcher(LIMITS, resolver=resolver)
    message = fails(
        "url_not_allowed",
        lambda: fetcher.fetch("https://images.example.com/a.jpg", field="image_url"),
    )
    assert message.startswith("image_url: host 'images.example.com' is at non-public address")
    assert resolver.lookups == [("images.example.com", 443)]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://[::1]/", "http://localhost/", "http://a.localhost/"]
)
def test_address_literals_and_localhost_never_reach_the_resolver(url: str) -> None:
    everything_public = FakeResolver("93.184.216.34")
    fetcher = UrlFetcher(LIMITS, resolver=everything_public)
    message = fails("url_not_allowed", lambda: fetcher.fetch(url, field="image_url"))
    assert "non-public address" in message
    assert everything_public.lookups == []


def test_https_connects_to_the_ip_but_verifies_the_host_name() -> None:
    target = parse_url("https://images.example.com/a.jpg", field="image_url")
    pool = pinned_pool(target, ipaddress.ip_address("93.184.216.34"), Deadline(math.inf))
    assert isinstance(pool, HTTPSConnectionPool)
    assert pool.host == "93.184.216.34"
    assert pool.assert_hostname == "images.example.com"
    assert pool.conn_kw["server_hostname"] == "images.example.com"
    assert pool.cert_reqs == "CERT_REQUIRED"


# --- against a loopback server ----------------------------------------------------------


def test_url_success(server: LocalServer) -> None:
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    decoded = read_image(
        ImageSource(image_url=server.url("/a.jpg?size=large")),
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
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name resolves once, to the checked address; a second lookup would fail.
    resolver = FakeResolver("127.0.0.1")
    real_getaddrinfo = socket.getaddrinfo

    def only_numeric(host: str, *args: object, **kwargs: object) -> object:
        assert host != "images.test", "the host name was resolved a second time"
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", only_numeric)
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    fetcher = as_public_host(resolver)
    assert fetcher.fetch(f"http://images.test:{server.port}/a.jpg", field="image_url") == data
    assert server.requests == [("/a.jpg", f"images.test:{server.port}")]
    assert resolver.lookups == [("images.test", server.port)]


def test_relative_redirect_is_followed(server: LocalServer) -> None:
    data = jpeg()
    server.routes["/old"] = redirect("/new.jpg", 301)
    server.routes["/new.jpg"] = respond(data)
    assert fetch(server.url("/old"), LOCAL) == data


@pytest.mark.parametrize(
    "location",
    ["http://10.0.0.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/"],
)
def test_redirect_to_a_private_address_is_refused(server: LocalServer, location: str) -> None:
    server.routes["/go"] = redirect(location)
    fetcher = as_public_host(FakeResolver())
    message = fails("url_not_allowed", lambda: fetcher.fetch(server.url("/go"), field="image_url"))
    assert "non-public address" in message
    assert [path for path, _ in server.requests] == ["/go"]


def test_redirect_to_another_scheme_is_refused(server: LocalServer) -> None:
    server.routes["/go"] = redirect("file:///etc/passwd", 307)
    fetcher = as_public_host(FakeResolver())
    fails("url_not_allowed", lambda: fetcher.fetch(server.url("/go"), field="image_url"))


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
    server: LocalServer, tmp_path: Path
) -> None:
    ca_file, server_file = make_tls_files(tmp_path, "images.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_file)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    # the throwaway CA is trusted through the fetcher's ca_certs, the system's CAs are not used
    fetcher = as_public_host(FakeResolver("127.0.0.1"), ca_certs=str(ca_file))
    data = jpeg()
    server.routes["/a.jpg"] = respond(data)
    assert fetcher.fetch(f"https://images.test:{server.port}/a.jpg", field="image_url") == data
    message = fails(
        "fetch_failed",
        lambda: fetcher.fetch(f"https://other.test:{server.port}/a.jpg", field="image_url"),
    )
    assert message == "image_url: TLS with 'other.test' failed (certificate or handshake)"
