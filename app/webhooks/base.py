"""What every provider module gives: how to check a delivery and how to read it."""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from app.types import SourceType
from app.webhooks.events import WebhookEvent


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same(expected: str, given: str | None) -> bool:
    """Constant-time equality; a missing or non-ASCII value never matches."""
    if not given or not given.isascii():
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def signed_hex(given: str | None, secret: str, body: bytes, *, prefix: str = "") -> bool:
    """``given`` is ``prefix`` + the hex HMAC-SHA256 of ``body`` under ``secret``."""
    if given is None or not given.startswith(prefix):
        return False
    digest = given[len(prefix) :].strip().lower()
    return same(hmac_sha256_hex(secret, body), digest)


class Provider(ABC):
    """One git host's webhook format."""

    name: ClassVar[str]
    # application source types this format may serve (custom GIT apps take any)
    families: ClassVar[frozenset[SourceType]]
    # headers naming the delivery, most specific first
    delivery_headers: ClassVar[tuple[str, ...]]
    # headers that carry the signature (or token): a delivery with none is refused unread
    signature_headers: ClassVar[tuple[str, ...]]

    def signed(self, headers: Mapping[str, str]) -> bool:
        """Whether the delivery carries a signature at all (checked before the body is read)."""
        return any(headers.get(name) for name in self.signature_headers)

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True when the delivery proves it knows ``secret``."""

    @abstractmethod
    def parse(self, headers: Mapping[str, str], payload: dict[str, Any]) -> list[WebhookEvent]:
        """The events in one delivery (one, but a Bitbucket push may name several refs)."""

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str | None:  # noqa: ARG002
        """The provider's id of this delivery (the same on its redeliveries), if it sends one."""
        for header in self.delivery_headers:
            value = headers.get(header, "").strip()
            if value:
                return value
        return None

    def serves(self, source_type: str) -> bool:
        return SourceType(source_type) in self.families
