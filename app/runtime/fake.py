"""An in-memory runtime for fast unit tests of the orchestration (never of Swarm itself)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import Cancelled, HealthCheckError, ReleaseError, SourceError, SourceNetworkError
from app.runtime.base import PulledImage, Release
from app.types import CancelToken, LogFn, LogStream, RegistryAuth, ServiceSpec


@dataclass
class FakeRuntime:
    """Records what it is asked and answers as configured.

    ``release_error`` / ``verify_error``: fail that step with this message.
    ``hang``: ``verify`` blocks until cancelled (or its timeout passes).
    ``pull_error``: pulls fail with this message; ``pull_network_failures``: that many
    pulls fail first as network errors (retried by the step). ``restore_error``: the
    restored previous version does not become healthy either.
    """

    release_error: str | None = None
    verify_error: str | None = None
    hang: bool = False
    pull_error: str | None = None
    pull_network_failures: int = 0
    restore_error: str | None = None
    restored: list[tuple[str, str, str | None]] = field(default_factory=list)  # name, image, path
    pulled: list[tuple[str, RegistryAuth | None]] = field(default_factory=list)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    released: list[ServiceSpec] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # tag -> deployment id
    removed_images: list[str] = field(default_factory=list)
    _previous: dict[str, ServiceSpec] = field(default_factory=dict)

    def pull(
        self, image: str, *, auth: RegistryAuth | None, log: LogFn, cancel: CancelToken
    ) -> PulledImage:
        """Record the pull; pin the image to a digest made from its name."""
        cancel.check()
        self.pulled.append((image, auth))
        if self.pull_network_failures > 0:
            self.pull_network_failures -= 1
            raise SourceNetworkError(f"cannot reach the registry of {image}")
        if self.pull_error is not None:
            raise SourceError(self.pull_error)
        log(f"pulled {image}", stream=LogStream.STDOUT)
        if "@sha256:" in image:
            return PulledImage(ref=image, image_id=image, digest=image.split("@", 1)[1])
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        return PulledImage(ref=f"{name}@{digest}", image_id=digest, digest=digest)

    def release(self, spec: ServiceSpec, *, log: LogFn) -> Release:
        """Record ``spec`` as the service's new spec."""
        if self.release_error is not None:
            raise ReleaseError(self.release_error)
        self.released.append(spec)
        previous = self.services.get(spec.name)
        self.services[spec.name] = spec
        if "slipway.deployment" in spec.labels and spec.image.startswith("slipway/"):
            self.images[spec.image] = spec.labels["slipway.deployment"]
        if previous is None:
            log(f"creating service {spec.name} with image {spec.image}", stream=LogStream.SYSTEM)
            return Release(service_id=f"fake-{spec.name}", created=True)
        log(
            f"updating service {spec.name}: image {previous.image} -> {spec.image}",
            stream=LogStream.SYSTEM,
        )
        self._previous[spec.name] = previous
        return Release(service_id=f"fake-{spec.name}", created=False, previous_image=previous.image)

    def undo(self, spec: ServiceSpec, release: Release, *, log: LogFn) -> None:
        """Restore the service's spec from before ``release`` (or forget a new one)."""
        self.undone.append(spec.name)
        if release.created:
            self.remove(spec.name)
        else:
            self.services[spec.name] = self._previous[spec.name]
        log(f"rolled back {spec.name}", stream=LogStream.SYSTEM)

    def restore(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        health_check_path: str | None,
        timeout: float,  # noqa: ARG002 - the protocol's signature
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        """Put the previous spec back (as ``undo``), then succeed or fail with ``restore_error``."""
        if release.created:
            raise ReleaseError(f"service {spec.name} was created by this release: no previous spec")
        self.undo(spec, release, log=log)
        cancel.check()
        previous = self.services[spec.name]
        self.restored.append((spec.name, previous.image, health_check_path))
        if self.restore_error is not None:
            raise HealthCheckError(self.restore_error)
        log(f"service {spec.name} is healthy", stream=LogStream.SYSTEM)
        return previous.image

    def prune_images(self, keep_deployments: Callable[[list[str]], set[str]]) -> list[str]:
        """Forget images whose deployment is gone, unless a service uses them."""
        alive = keep_deployments(list(set(self.images.values())))
        used = {s.image for s in self.services.values()}
        gone = [t for t, d in self.images.items() if d not in alive and t not in used]
        for tag in gone:
            del self.images[tag]
        return gone

    def verify(
        self,
        spec: ServiceSpec,
        release: Release,  # noqa: ARG002 - the protocol's signature
        *,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        """Succeed, fail with ``verify_error``, or hang until cancelled."""
        cancel.check()
        if self.hang:
            self._hang(spec, timeout=timeout, cancel=cancel)
        if self.verify_error is not None:
            raise HealthCheckError(self.verify_error)
        self.verified.append(spec.name)
        log(f"service {spec.name} is healthy", stream=LogStream.SYSTEM)

    def image_present(self, image: str) -> bool:
        """Built images it was given to release (and did not prune), and pulled ones."""
        return image in self.images or "@sha256:" in image

    def remove_image(self, image: str) -> bool:
        """Forget ``image`` unless a service uses it."""
        if image not in self.images or any(s.image == image for s in self.services.values()):
            return False
        del self.images[image]
        self.removed_images.append(image)
        return True

    def drained(self, name: str) -> bool:
        """No containers here: a removed service is drained at once."""
        return name not in self.services

    def remove(self, name: str) -> None:
        """Forget the service if it exists."""
        if self.services.pop(name, None) is not None:
            self.removed.append(name)

    def _hang(self, spec: ServiceSpec, *, timeout: float, cancel: CancelToken) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if cancel.wait(min(left, 0.5)):
                raise Cancelled(cancel.reason)
        raise HealthCheckError(f"service {spec.name} did not become healthy within {timeout:g}s")
