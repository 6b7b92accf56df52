"""Finding the real services tests need: skip locally when absent, fail under CI=true."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Skip (locally) or fail (in CI) because ``what`` is not available."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def port_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url if "//" in url else f"tcp://{url}")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
