"""probes.py against local sockets and a local HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from app.runtime.probes import http_probe, http_url, tcp_probe


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        codes = {"/ok": 200, "/moved": 302, "/missing": 404, "/boom": 500}
        self.send_response(codes.get(self.path, 404))
        if self.path == "/moved":
            self.send_header("Location", "/nowhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def closing_port() -> Iterator[int]:
    """Accepts and closes at once, like docker-proxy with nothing behind it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_tcp_probe_of_a_listening_server(http_port: int) -> None:
    assert tcp_probe("127.0.0.1", http_port) is None


def test_tcp_probe_of_a_closed_port() -> None:
    failure = tcp_probe("127.0.0.1", unused_port())
    assert failure is not None and failure.startswith("connection failed")


def test_tcp_probe_of_a_proxy_with_nothing_behind_it(closing_port: int) -> None:
    failure = tcp_probe("127.0.0.1", closing_port)
    assert failure is not None and "nothing listening behind it" in failure


def test_http_probe_accepts_2xx_and_3xx(http_port: int) -> None:
    assert http_probe(http_url("127.0.0.1", http_port, "/ok")) is None
    assert http_probe(http_url("127.0.0.1", http_port, "moved")) is None


def test_http_probe_rejects_4xx_and_5xx(http_port: int) -> None:
    url = http_url("127.0.0.1", http_port, "/missing")
    assert http_probe(url) == f"GET {url} answered HTTP 404, expected 2xx or 3xx"
    assert "answered HTTP 500" in (http_probe(http_url("127.0.0.1", http_port, "/boom")) or "")


def test_http_probe_of_nothing() -> None:
    failure = http_probe(http_url("127.0.0.1", unused_port(), "/"))
    assert failure is not None and "failed" in failure


def test_http_url_joins_one_slash() -> None:
    assert http_url("h", 1, "/health") == "http://h:1/health"
    assert http_url("h", 1, "health") == "http://h:1/health"
