"""Loopback servers that are not registries, for the registry client's and pusher's fault
tests: one that answers every request 200 without the registry header, one that accepts
connections and never answers, ports where nothing listens, and a registry whose every
write fails with a status (5xx)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Plain(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b"<html>a web page, not a registry</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def plain_http_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of an HTTP server answering 200 with a page to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def refusing_port() -> Iterator[str]:
    """``127.0.0.1:PORT`` that refuses connections for as long as it is held: bound but not
    listening, so no other process can take the port meanwhile (as one may after
    :func:`closed_port`, on a machine running other tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def closed_port() -> str:
    """``127.0.0.1:PORT`` where nothing listens (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


class _Failing(BaseHTTPRequestHandler):
    """Just enough of the registry API for a push to reach its manifest: ``/v2/`` answers,
    every blob "exists" (HEAD 200 with its digest), and every write gets ``status``."""

    status = 503

    def _send(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._send(200 if self.path == "/v2/" else self.status)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(200, {"Docker-Content-Digest": self.path.rsplit("/", 1)[-1]})

    def _write(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(self.status)

    do_PUT = do_POST = do_PATCH = _write

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def failing_registry(status: int = 503) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a "registry" that takes the blobs as present and answers every
    write (the manifest's PUT) with ``status``."""
    handler = type("Failing", (_Failing,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
