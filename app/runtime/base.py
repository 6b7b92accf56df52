"""What the runtime provides: make a Swarm service true, then prove it healthy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.types import CancelToken, LogFn, PortSpec, RegistryAuth, ServiceSpec


@dataclass(frozen=True, slots=True)
class Release:
    """The outcome of creating or updating a service."""

    service_id: str
    created: bool
    previous_image: str | None = None
    # Ids of the service's tasks from before the release: verification ignores them, so
    # a redeploy of the same image, or a failed earlier attempt, cannot pass for this one.
    previous_tasks: frozenset[str] = frozenset()
    # The whole spec the service had before (an update), so that it can be put back.
    previous_spec: dict[str, Any] | None = None
    # The ports as published, when the runtime changed their mode (None: as in the spec).
    ports: tuple[PortSpec, ...] | None = None


@dataclass(frozen=True, slots=True)
class PulledImage:
    """An image the engine now holds, and the immutable reference to release it by."""

    ref: str  # ``repo@sha256:...``; the image ID when the image is on this engine only
    image_id: str
    digest: str | None = None  # the registry digest; None for a local-only image


class Runtime(Protocol):
    def pull(
        self, image: str, *, auth: RegistryAuth | None, log: LogFn, cancel: CancelToken
    ) -> PulledImage:
        """Pull ``image`` (with ``auth``) and pin it; SourceError, SourceNetworkError to retry."""
        ...

    def release(self, spec: ServiceSpec, *, log: LogFn) -> Release:
        """Create the service or update it in place to ``spec``."""
        ...

    def verify(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        """Return when converged, running, healthy and answering; raise HealthCheckError."""
        ...

    def undo(self, spec: ServiceSpec, release: Release, *, log: LogFn) -> None:
        """Put back what ``release`` changed: the previous spec, or no service at all."""
        ...

    def restore(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        health_check_path: str | None,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        """After ``release`` (an update) failed verification: put the service's previous
        spec back and wait until that version is healthy again (converged, running, its
        first port answering, ``health_check_path`` OK when given). Returns the image
        restored; ReleaseError or HealthCheckError when it does not come back."""
        ...

    def image_present(self, image: str) -> bool:
        """Does the engine hold ``image`` (a tag, ``repo@sha256:...`` or an image ID)?"""
        ...

    def remove_image(self, image: str) -> bool:
        """Remove the reference ``image``; an image a running container uses stays (stopped
        ones, such as ended Swarm tasks, do not keep it). True when removed, False when
        absent or in use."""
        ...

    def drained(self, name: str) -> bool:
        """True once no container of service ``name`` is left (its images can go)."""
        ...

    def remove(self, name: str) -> None:
        """Remove the service if it exists."""
        ...

    def prune_images(self, keep_deployments: Callable[[list[str]], set[str]]) -> list[str]:
        """Remove Slipway-built images whose deployment is gone; returns what was removed.

        ``keep_deployments(ids)`` answers which of the labelled deployment ids still exist.
        """
        ...
