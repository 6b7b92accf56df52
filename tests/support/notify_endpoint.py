"""A real HTTP endpoint on loopback that apprise's ``json://`` and ``form://`` post to.

It records each request (path, headers, decoded body) and can answer the first N with an
error status, so tests see apprise's real requests and Slipway's retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int  # what the endpoint answered
    at: float  # time.monotonic()


class Endpoint:
    def __init__(self, *, fail_first: int = 0, status: int = 500) -> None:
        self.fail_first = fail_first
        self.status = status
        self.received: list[Received] = []
        self._lock = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                with endpoint._lock:
                    failing = endpoint.fail_first > 0
                    endpoint.fail_first -= 1 if failing else 0
                    code = endpoint.status if failing else 200
                    endpoint.received.append(
                        Received(self.path, dict(self.headers), body, code, time.monotonic())
                    )
                    endpoint._lock.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, scheme: str = "json", path: str = "hook/tok-7f3a9c2e51") -> str:
        """An apprise URL to this endpoint; the path stands for a token a service would hold."""
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def wait(self, count: int, timeout: float = 20) -> list[Received]:
        """The first ``count`` requests, waiting for them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} requests, not {count}, in {timeout}s"
                self._lock.wait(left)
            return list(self.received[:count])

    def ok(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]


@contextmanager
def endpoint(**kwargs: Any) -> Iterator[Endpoint]:
    ep = Endpoint(**kwargs)
    ep.thread.start()
    try:
        yield ep
    finally:
        ep.server.shutdown()
        ep.server.server_close()
