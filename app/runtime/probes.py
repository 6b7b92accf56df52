"""Probes from outside the service: does the published port answer, does the path return OK.

Each probe returns ``None`` on success or a short reason it failed, for progress lines.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from typing import Any

CONNECT_TIMEOUT_S = 2.0
# A proxy in front of the port (docker-proxy for host-mode ports on 127.0.0.1) accepts
# the connection and closes it at once when nothing listens behind it; a real server
# keeps it open, or greets us.
LINGER_S = 0.3


def tcp_probe(host: str, port: int, *, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Connect to ``host:port``; fail when refused or closed at once by a proxy."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(LINGER_S)
            try:
                data = sock.recv(1)
            except TimeoutError:
                return None  # open and quiet: a server waiting for our request
            return None if data else "connection closed at once (nothing listening behind it)"
    except ConnectionResetError:
        return "connection reset (nothing listening behind it)"
    except OSError as exc:
        return f"connection failed: {exc.strerror or exc}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer already proves the app is serving; do not follow it."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path`` with exactly one slash before the path."""
    return f"http://{host}:{port}/{path.lstrip('/')}"


def http_probe(url: str, *, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """GET ``url``; a 2xx or 3xx answer is success."""
    request = urllib.request.Request(url, method="GET")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"GET {url} failed: {reason}"
    if 200 <= status < 400:
        return None
    return f"GET {url} answered HTTP {status}, expected 2xx or 3xx"
