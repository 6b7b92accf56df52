"""The connection to one Docker engine: made on first use, retried until it answers.

``serve`` and ``worker`` start without an engine. Each deployment that needs the engine
asks for the client; while none answers it gets :class:`Unavailable` ("cannot reach the
Docker engine at <address>: ..."), and the next one tries again, so deployments work as
soon as the engine is back, without a restart. Once made, the client is kept: the
Docker SDK opens a new HTTP connection when the engine has restarted.

``status()`` is the readiness check: a ``/_ping`` with a short timeout, cached for
``cache_s`` seconds, and never run by two callers at once (the second gets the last
answer), so that callers cannot make it cost more than one ping per period.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from docker.client import DockerClient
from requests.exceptions import RequestException

from app.errors import Unavailable
from app.runtime.servers import docker_client, engine_address

PING_TIMEOUT_S = 2.0
STATUS_CACHE_S = 3.0


@dataclass(frozen=True, slots=True)
class EngineStatus:
    up: bool
    reason: str  # "ok", or why not (names the engine's address)


class EngineConnection:
    """A lazily made :class:`DockerClient` for the engine at ``base_url``."""

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout: int = 120,
        ping_timeout: float = PING_TIMEOUT_S,
        cache_s: float = STATUS_CACHE_S,
    ) -> None:
        self.address = engine_address(base_url)
        self._base_url = base_url
        self._timeout = timeout
        self._ping_timeout = ping_timeout
        self._cache_s = cache_s
        self._client: DockerClient | None = None
        self._connect_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._status: EngineStatus | None = None
        self._status_at = 0.0

    def client(self) -> DockerClient:
        """The client; connects first if needed; raises :class:`Unavailable`."""
        if self._client is not None:
            return self._client
        with self._connect_lock:
            if self._client is None:
                # A short timeout for the handshake, then the long one for builds.
                client = docker_client(self._base_url, timeout=int(max(1, self._ping_timeout)))
                client.api.timeout = self._timeout
                self._client = client
            return self._client

    def require(self) -> DockerClient:
        """The client, once the engine answered a ping now; raises :class:`Unavailable`.

        Called before a deployment's build, pull and release, so that an engine that went
        away says so, with its address, instead of failing half-way through a step.
        """
        client = self.client()
        status = self._check()
        if not status.up:
            raise Unavailable(status.reason)
        return client

    def status(self) -> EngineStatus:
        """Is the engine answering now? (cached; see the module's docstring)."""
        if self._status is not None and time.monotonic() - self._status_at < self._cache_s:
            return self._status
        if not self._status_lock.acquire(blocking=self._status is None):
            return self._status or EngineStatus(False, "not checked yet")
        try:
            self._status = self._check()
            self._status_at = time.monotonic()
            return self._status
        finally:
            self._status_lock.release()

    def _check(self) -> EngineStatus:
        try:
            api = self.client().api
            response = api.get(f"{api.base_url}/_ping", timeout=self._ping_timeout)
        except Unavailable as exc:
            return EngineStatus(False, str(exc))
        except (RequestException, OSError) as exc:
            return EngineStatus(False, f"cannot reach the Docker engine at {self.address}: {exc}")
        if response.status_code != 200:
            return EngineStatus(
                False, f"the Docker engine at {self.address} answered HTTP {response.status_code}"
            )
        return EngineStatus(True, "ok")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
