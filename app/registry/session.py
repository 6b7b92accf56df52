"""One conversation with one registry's HTTP API: base URL, credentials, tokens, timeouts.

A request that gets 401 is answered once: with Basic auth, or with a Bearer token fetched
from the challenge's realm (the token flow of Docker Hub, GHCR, GitLab, Harbor), then sent
again. Every call has the client's timeout, so a registry that accepts and never answers
is "did not answer within Ns". httpx's exceptions stop here: they become
RegistryNetworkError (worth another try) or RegistryAuthError, with a message that names
the host and never a credential or a token. Redirects are not followed (credentials
belong to the one host), and answers are never quoted, only their status and headers.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from app.errors import RegistryAuthError, RegistryError, RegistryNetworkError
from app.registry.address import api_base
from app.registry.challenge import Challenge, parse_challenge
from app.types import RegistryTarget

TOKEN_MAX_BYTES = 1 << 20  # a token answer larger than this is not a token
BODY_MAX_BYTES = 64 * 1024  # of an API answer: only its error codes are read
_CODE = re.compile(r"^[A-Z_]{1,40}$")


class RegistrySession:
    def __init__(
        self,
        target: RegistryTarget,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.target = target
        self.host = target.host
        self.base = api_base(target.host, secure=target.secure)
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self._authorization: str | None = None

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    @property
    def username(self) -> str | None:
        return self.target.auth.username if self.target.auth else None

    def url(self, path: str) -> str:
        return urljoin(self.base + "/", path.lstrip("/"))

    def same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def send(
        self, method: str, url: str, *, scope: str | None = None, anonymous: bool = False
    ) -> Answer:
        """``method url``; a 401 is answered once with credentials or a token for ``scope``
        (unless ``anonymous``). The caller reads the status."""
        response = self._send(method, url, None if anonymous else self._authorization)
        if response.status != 401 or anonymous:
            return response
        header = self._answer(parse_challenge(response.headers.get("www-authenticate")), scope)
        if header is None:
            return response
        self._authorization = header
        return self._send(method, url, header)

    def _send(self, method: str, url: str, authorization: str | None) -> Answer:
        headers = {"Authorization": authorization} if authorization else {}
        with self._translated(f"{method} {urlsplit(url).path}"):
            with self._http.stream(method, url, headers=headers) as response:
                body = _read_some(response, BODY_MAX_BYTES, self._deadline(), self.host)
        return Answer(status=response.status_code, headers=response.headers, body=body)

    def _deadline(self) -> float:
        """A registry trickling its answer gets as long again as one that says nothing."""
        return time.monotonic() + 2 * self.timeout

    def _answer(self, challenge: Challenge | None, scope: str | None) -> str | None:
        """The Authorization header that answers ``challenge``; None when none can."""
        if challenge is None:
            return None
        auth = self.target.auth
        if challenge.scheme == "basic":
            if auth is None:
                return None
            pair = f"{auth.username}:{auth.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return "Bearer " + self._token(challenge, challenge.params.get("scope") or scope)

    def _token(self, challenge: Challenge, scope: str | None) -> str:
        realm = challenge.realm or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{self.host} asked for a token from an unusable realm")
        if parts.scheme == "http" and self.target.secure and self.target.auth is not None:
            raise RegistryAuthError(
                f"{self.host} asked for a token over plain http from {parts.netloc}: "
                "refusing to send the credentials unencrypted"
            )
        params = {k: v for k, v in (("service", challenge.params.get("service")),) if v}
        if scope:
            params["scope"] = scope
        auth = self.target.auth
        basic = httpx.BasicAuth(auth.username, auth.password) if auth else None
        with self._translated(f"GET {parts.path or '/'} (token)", host=parts.netloc):
            with self._http.stream("GET", realm, params=params, auth=basic) as response:
                body = _read_some(response, TOKEN_MAX_BYTES, self._deadline(), parts.netloc)
                if len(body) >= TOKEN_MAX_BYTES:
                    raise RegistryError(f"{parts.netloc} answered a token of over 1 MiB")
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"credentials refused by {self.host} (token server {parts.netloc})"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"the token server of {self.host} ({parts.netloc}) answered HTTP "
                f"{response.status_code}"
            )
        return _token_of(body, self.host)

    def _translated(self, what: str, *, host: str | None = None) -> AbstractContextManager[None]:
        return translated(host or self.host, what, self.timeout)


@dataclass(frozen=True, slots=True)
class Answer:
    """A registry's answer: status, headers and the start of its body (never shown)."""

    status: int
    headers: httpx.Headers
    body: bytes

    def error_codes(self) -> list[str]:
        """The distribution API's error codes (``DENIED``, ``UNSUPPORTED``...) in the body."""
        try:
            data: Any = json.loads(self.body)
        except ValueError:
            return []
        errors = data.get("errors") if isinstance(data, dict) else None
        codes = [e.get("code") for e in errors or [] if isinstance(e, dict)]
        return [c for c in codes if isinstance(c, str) and _CODE.match(c)][:3]


def _read_some(response: httpx.Response, limit: int, deadline: float, host: str) -> bytes:
    """At most ``limit`` bytes of the body, within the deadline; the rest is dropped."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= limit:
            break
        if time.monotonic() > deadline:
            raise RegistryNetworkError(f"{host} did not finish its answer in time")
    return bytes(body[:limit])


def _token_of(body: bytes, host: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"the token server of {host} answered something not JSON") from exc
    token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or len(token) > 64 * 1024:
        raise RegistryError(f"the token server of {host} answered without a token")
    return token


@contextmanager
def translated(host: str, what: str, timeout: float) -> Iterator[None]:
    """httpx exceptions inside → RegistryError subclasses, worded for a person."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RegistryNetworkError(f"{host} did not answer within {timeout:g}s ({what})") from exc
    except httpx.ConnectError as exc:
        raise RegistryNetworkError(f"cannot connect to {host}: {_reason(exc)}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise RegistryNetworkError(
            f"{host} broke off the connection without an HTTP answer ({what}); "
            "if it speaks https, give the URL as https://"
        ) from exc
    except httpx.HTTPError as exc:
        raise RegistryNetworkError(
            f"talking to {host} failed ({what}): {type(exc).__name__}"
        ) from exc


def _reason(exc: BaseException) -> str:
    """Why a connection failed, from the OS or TLS error under httpx's."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return "the TLS handshake failed (if it serves plain http, give the URL as http://)"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "no such host (the name does not resolve)"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
