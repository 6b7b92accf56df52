"""Apprise behind a small protocol: check a URL, send one message.

Apprise logs through the ``apprise`` logger, and its lines name URLs with their tokens
("Could not load Slack URL: slack://…"), so that logger never reaches Slipway's handlers
(nor do urllib3's request lines while a thread sends, ``_Quiet``):
:func:`_isolate` stops it propagating and keeps, per thread, the warnings of the call
being made, which become the reason a check or a send gives, masked with every part of
the URL (:func:`url_masker`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from app.errors import BadInput
from app.masking import Masker

MAX_URL = 2000
_SPLIT = re.compile(r"[/:@?&=#,;+\s]+")


@dataclass(frozen=True)
class ParsedUrl:
    """What may be shown of an apprise URL: the service, never the rest."""

    service: str  # apprise's name for it: "Slack", "JSON", "Discord"
    scheme: str  # "slack", "json"


class SendFailed(Exception):
    """A send that did not go through; the message is safe to show (no URL parts)."""


class Transport(Protocol):
    def parse(self, url: str) -> ParsedUrl:
        """The service of a valid URL; BadInput saying why otherwise (no URL parts)."""
        ...

    def send(self, url: str, *, title: str, body: str, timeout: float) -> None:
        """Send one message; SendFailed with the reason."""
        ...


def url_masker(url: str) -> Masker:
    """Masks the URL and each of its parts (host, user, tokens, path, query values) of 3
    characters or more, in any text, so a library's message cannot carry them."""
    scheme, _, rest = url.partition("://")
    parts = {url, unquote(url), rest, unquote(rest)}
    for piece in _SPLIT.split(rest) + _SPLIT.split(unquote(rest)):
        if piece and piece.lower() != scheme.lower():
            parts.add(piece)
    return Masker(parts, min_length=3)


class _Capture(logging.Handler):
    """The apprise logger's only handler: each thread's warnings while it captures."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        held: list[str] | None = getattr(self.local, "held", None)
        if held is not None:
            held.append(record.getMessage())


class _Quiet(logging.Filter):
    """Drops the HTTP libraries' records made by a thread while it sends a notification:
    at DEBUG urllib3 logs each request line, and a service's token is often in its path."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: ARG002 - logging's signature
        return getattr(_capture.local, "held", None) is None


_capture = _Capture()
_quiet = _Quiet()
_isolated = threading.Lock()
# Where apprise's plugins' HTTP clients log (a filter is per logger, not inherited).
QUIETED = (
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "requests",
    "requests_oauthlib",
)


def _isolate() -> None:
    logger = logging.getLogger("apprise")
    with _isolated:
        if _capture not in logger.handlers:
            logger.handlers = [_capture]
            logger.propagate = False
            logger.setLevel(logging.WARNING)
            for name in QUIETED:
                logging.getLogger(name).addFilter(_quiet)


@contextmanager
def _captured() -> Iterator[list[str]]:
    _isolate()
    held: list[str] = []
    _capture.local.held = held
    try:
        yield held
    finally:
        _capture.local.held = None


def _reason(held: list[str], url: str, default: str) -> str:
    mask = url_masker(url)
    text = "; ".join(dict.fromkeys(mask(line).strip() for line in held if line.strip()))
    return (text or default)[:1000]


class AppriseTransport:
    """The real transport: apprise's own parser and plugins; state kept in memory only."""

    def __init__(self) -> None:
        import apprise  # imported on first use: loading its plugins takes a moment

        self._apprise = apprise
        self._asset = apprise.AppriseAsset(storage_mode="memory")

    def _instantiate(self, url: str) -> object:
        if not url or len(url) > MAX_URL:
            raise BadInput(f"url must be an apprise URL of 1 to {MAX_URL} characters")
        if "://" not in url:
            raise BadInput(
                "url is not an apprise URL: it needs a service scheme such as json://, "
                "slack://, discord://, mailto:// (see apprise's list of services)"
            )
        with _captured() as held:
            plugin = self._apprise.Apprise.instantiate(url, asset=self._asset)
        if plugin is None:
            scheme = url.partition("://")[0].lower()
            why = _reason(held, url, "apprise cannot parse it")
            raise BadInput(f"url is not a valid apprise URL for {scheme}://: {why}")
        return plugin

    def parse(self, url: str) -> ParsedUrl:
        plugin = self._instantiate(url)
        return ParsedUrl(
            service=str(getattr(plugin, "service_name", "") or "apprise")[:100],
            scheme=url.partition("://")[0].lower()[:32],
        )

    def send(self, url: str, *, title: str, body: str, timeout: float) -> None:
        try:
            plugin = self._instantiate(url)
        except BadInput as exc:  # a URL stored before apprise changed its mind
            raise SendFailed(str(exc)) from None
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            if hasattr(plugin, attr):
                setattr(plugin, attr, timeout)
        with _captured() as held:
            try:
                ok = bool(plugin.notify(body=body, title=title))  # type: ignore[attr-defined]
            except Exception as exc:  # a plugin's own bug: named by class only
                raise SendFailed(f"the apprise plugin failed: {exc.__class__.__name__}") from None
        if not ok:
            service = getattr(plugin, "service_name", "the service")
            raise SendFailed(_reason(held, url, f"{service} did not accept the message"))
