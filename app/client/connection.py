"""Where the server is and the key to use: ``SLIPWAY_URL`` and ``SLIPWAY_API_KEY`` (or flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from app.client.errors import UsageError


@dataclass(frozen=True)
class Connection:
    """The GraphQL endpoint over HTTP and WebSocket, and the API key (never in its repr)."""

    http_url: str
    ws_url: str
    api_key: str = field(repr=False)

    @classmethod
    def of(cls, url: str | None, api_key: str | None) -> Connection:
        """From ``http(s)://host[:port]`` (``/graphql`` is added unless given) and a key."""
        if not url:
            raise UsageError("no server given: set SLIPWAY_URL or pass --url http://host:port")
        if not api_key:
            raise UsageError("no API key given: set SLIPWAY_API_KEY (or pass --api-key)")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--url must look like http://host:port, got {url!r}")
        if parts.username or parts.password:
            raise UsageError("--url must not hold credentials: the key goes in SLIPWAY_API_KEY")
        path = parts.path.rstrip("/")
        path = path if path.endswith("/graphql") else path + "/graphql"
        http_url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        ws_url = urlunsplit((ws_scheme, parts.netloc, path, "", ""))
        return cls(http_url=http_url, ws_url=ws_url, api_key=api_key.strip())
