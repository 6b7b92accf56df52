"""The registry family's protocols: pushing images (through a Docker engine) and talking to
a registry's HTTP API (log in, check push rights, resolve and delete manifests).

Real implementations: ``app/registry/push.py`` (the engine's push stream) and
``app/registry/client.py`` (the distribution API v2); fakes for unit tests beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.types import CancelToken, LogFn, RegistryTarget


@dataclass(frozen=True, slots=True)
class PushedImage:
    """An image now in a registry: ``ref`` is ``repository@sha256:...`` (immutable)."""

    repository: str  # host/prefix/name
    tag: str
    digest: str  # sha256:...

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True, slots=True)
class RegistryCheckResult:
    """What ``check`` found, in words a person can act on, and how far it got: each step is
    True (passed), False (failed there) or None (not reached; ``credentials_accepted`` is
    also None when the registry asked for no login)."""

    ok: bool
    message: str
    reachable: bool | None = None  # an HTTP answer to GET /v2/
    is_registry: bool | None = None  # the distribution API's header or Bearer challenge
    credentials_accepted: bool | None = None
    push_allowed: bool | None = None


class ImagePusher(Protocol):
    def push(
        self,
        image: str,
        *,
        target: RegistryTarget,
        repository: str,
        tag: str,
        log: LogFn,
        cancel: CancelToken,
    ) -> PushedImage:
        """Tag local ``image`` as ``repository:tag`` and push it with ``target.auth``.

        Progress goes to ``log`` per layer, throttled. Raises RegistryNetworkError (retry),
        RegistryAuthError (refused credentials: do not retry), Cancelled.
        """
        ...


class RegistryClient(Protocol):
    def check(self, target: RegistryTarget, *, repository: str) -> RegistryCheckResult:
        """Reachable? A registry? Credentials accepted? May ``repository`` be pushed to?"""
        ...

    def delete(self, target: RegistryTarget, *, repository: str, digest: str) -> bool:
        """Delete the manifest ``digest`` (and so every tag on it); False if already gone."""
        ...
