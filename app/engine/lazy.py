"""The runtime, builders and pusher of the real adapters, bound to the engine when first
needed.

``serve`` and ``worker`` build their adapters before any engine may answer: these
wrappers make the real :class:`SwarmRuntime`, builders and pusher from the
:class:`EngineConnection` on first use, and check that the engine answers before each
build, pull, push and release, so that a deployment fails at once with "cannot reach the
Docker engine at <address>" while it is away and works again once it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from docker.client import DockerClient

from app.builders.base import Builder
from app.registry.base import ImagePusher, PushedImage
from app.registry.push import DockerPusher
from app.runtime.base import PulledImage, Release, Runtime
from app.runtime.connection import EngineConnection
from app.types import (
    BuildSpec,
    CancelToken,
    LogFn,
    RegistryAuth,
    RegistryTarget,
    ServiceSpec,
)


class _Bound:
    """Makes one object from the engine's client, once, on first use."""

    def __init__(self, connection: EngineConnection, make: Callable[[DockerClient], Any]) -> None:
        self.connection = connection
        self._make = make
        self._made: Any = None
        self._lock = threading.Lock()

    def get(self, *, ping: bool) -> Any:
        client = self.connection.require() if ping else self.connection.client()
        with self._lock:
            if self._made is None:
                self._made = self._make(client)
            return self._made


class EngineBuilder:
    """A :class:`Builder` made from the engine's client when the first build runs."""

    def __init__(self, connection: EngineConnection, factory: Callable[..., Builder]) -> None:
        self._bound = _Bound(connection, lambda client: factory(docker_client=client))

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        builder: Builder = self._bound.get(ping=True)
        return builder.build(spec, log=log, cancel=cancel)


class EnginePusher:
    """An :class:`ImagePusher` made from the engine's client when the first push runs."""

    def __init__(
        self,
        connection: EngineConnection,
        factory: Callable[[DockerClient], ImagePusher] = DockerPusher,
    ) -> None:
        self._bound = _Bound(connection, factory)

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
        pusher: ImagePusher = self._bound.get(ping=True)
        return pusher.push(
            image, target=target, repository=repository, tag=tag, log=log, cancel=cancel
        )


class EngineRuntime:
    """A :class:`Runtime` made from the engine's client when first used."""

    def __init__(
        self, connection: EngineConnection, make: Callable[[DockerClient], Runtime]
    ) -> None:
        self._bound = _Bound(connection, make)

    def _runtime(self, *, ping: bool = False) -> Runtime:
        runtime: Runtime = self._bound.get(ping=ping)
        return runtime

    def pull(
        self, image: str, *, auth: RegistryAuth | None, log: LogFn, cancel: CancelToken
    ) -> PulledImage:
        return self._runtime(ping=True).pull(image, auth=auth, log=log, cancel=cancel)

    def release(self, spec: ServiceSpec, *, log: LogFn) -> Release:
        return self._runtime(ping=True).release(spec, log=log)

    def verify(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        self._runtime().verify(spec, release, timeout=timeout, log=log, cancel=cancel)

    def undo(self, spec: ServiceSpec, release: Release, *, log: LogFn) -> None:
        self._runtime().undo(spec, release, log=log)

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
        return self._runtime().restore(
            spec,
            release,
            health_check_path=health_check_path,
            timeout=timeout,
            log=log,
            cancel=cancel,
        )

    def image_present(self, image: str) -> bool:
        return self._runtime().image_present(image)

    def remove_image(self, image: str) -> bool:
        return self._runtime().remove_image(image)

    def drained(self, name: str) -> bool:
        return self._runtime().drained(name)

    def remove(self, name: str) -> None:
        self._runtime().remove(name)

    def prune_images(self, keep_deployments: Callable[[list[str]], set[str]]) -> list[str]:
        return self._runtime().prune_images(keep_deployments)
