"""What the runtime provides: make a Swarm service true, then prove it healthy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.types import CancelToken, LogFn, ServiceSpec


@dataclass(frozen=True, slots=True)
class Release:
    """The outcome of creating or updating a service."""

    service_id: str
    created: bool
    previous_image: str | None = None
    # Ids of the service's tasks from before the release: verification ignores them, so
    # a redeploy of the same image, or a failed earlier attempt, cannot pass for this one.
    previous_tasks: frozenset[str] = frozenset()


class Runtime(Protocol):
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

    def remove(self, name: str) -> None:
        """Remove the service if it exists."""
        ...
