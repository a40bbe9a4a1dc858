"""Real servers for the handler tests: an aiosmtpd SMTP server and a stdlib HTTP(S) server.

Both listen on 127.0.0.1 only, on ports the OS picks, and run in threads so the handler under
test drives them through real sockets. TLS uses a throwaway CA made by trustme.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import EphemeralPortController

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


# --- SMTP ---------------------------------------------------------------------------------------


class RecordingHandler:
    """An aiosmtpd handler that keeps each delivered envelope and can refuse on cue."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        #: recipient -> reply to its RCPT command, e.g. "550 5.1.1 no such user".
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply = "250 Message accepted for delivery"
        #: ("MAIL", sender) and ("DATA", sender) in the order the commands arrived, every session.
        self.events: list[tuple[str, str]] = []

    async def handle_MAIL(  # noqa: N802 - the name aiosmtpd looks up
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        self.events.append(("MAIL", address))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd looks up
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.events.append(("DATA", envelope.mail_from or ""))
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


def check_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start an SMTP server with the given aiosmtpd options (tls_context, authenticator, ...)."""
    controllers: list[Controller] = []

    def start(**options: Any) -> SmtpServer:
        handler = RecordingHandler()
        controller = EphemeralPortController(
            handler, hostname="127.0.0.1", port=0, server_hostname="localhost", **options
        )
        controller.start()
        controllers.append(controller)
        return SmtpServer(host="127.0.0.1", port=controller.port, handler=handler)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server: no TLS, no AUTH."""
    return start_smtp()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening, so connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail any attempt to open a socket connection; returns the addresses attempted."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"the code under test tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: False sends the body with no Content-Length, ended by closing the connection.
    send_length: bool = True


@dataclass
class HttpServer:
    """A stdlib HTTP server in a thread, serving fixed responses registered by the test."""

    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    #: (path, Host header) of every request, in arrival order.
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, body: bytes = b"", **options: Any) -> str:
        self.routes[path] = Route(body, **options)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _handler_for(state: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Host", "")))
            route = state.routes.get(self.path, Route(b"not found", status=404))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.send_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


def _serve(host: str, tls: ssl.SSLContext | None) -> Iterator[HttpServer]:
    state = HttpServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls else "http"
    state.base_url = f"{scheme}://{host}:{httpd.server_address[1]}"
    # A short poll interval only makes shutdown() at teardown quick.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    yield from _serve("127.0.0.1", None)


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[HttpServer]:
    """An HTTPS server addressed as ``localhost``, with a certificate valid for that name only.

    Reaching it proves a client that connects to the resolved IP still verifies the name.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    yield from _serve("localhost", context)
