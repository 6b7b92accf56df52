"""VERIFY_HEALTH on Swarm: poll the release until healthy, within one deadline.

Where the poll proves that the routing mesh does not route (``MeshDoesNotRoute``), the
engine's verdict is recorded and, as ``SLIPWAY_INGRESS_FALLBACK`` says, the service is
republished with host-mode ports in place and watched again (``host``), or the
deployment fails with the reason and the fix (``refuse``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from docker.client import DockerClient
from docker.errors import DockerException

from app.errors import Cancelled, HealthCheckError
from app.runtime.base import Release
from app.runtime.converge import Convergence
from app.runtime.images import authed_api
from app.runtime.mesh import (
    FIX,
    IngressFallback,
    MeshDoesNotRoute,
    MeshVerdicts,
    host_mode_line,
    in_host_mode,
)
from app.runtime.redact import redact
from app.runtime.spec import swarm_service_args
from app.types import CancelToken, LogFn, LogStream, ServiceSpec

logger = logging.getLogger(__name__)
SYSTEM = LogStream.SYSTEM


class Verification:
    """One VERIFY_HEALTH of one release (see :meth:`SwarmRuntime.verify`)."""

    def __init__(
        self,
        client: DockerClient,
        *,
        probe_host: str,
        poll_interval: float,
        max_failed_tasks: int,
        min_running_s: float,
        fallback: IngressFallback,
        mesh: MeshVerdicts,
        engine_id: Callable[[], str],
    ) -> None:
        self._client = client
        self._probe_host = probe_host
        self._poll_interval = poll_interval
        self._max_failed_tasks = max_failed_tasks
        self._min_running_s = min_running_s
        self._fallback = fallback
        self._mesh = mesh
        self._engine_id = engine_id

    def run(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        """Return when healthy; raise HealthCheckError (or Cancelled)."""
        if release.ports is not None:  # what release() published, after any fallback
            spec = replace(spec, ports=release.ports)
        deadline = time.monotonic() + timeout
        try:
            self._wait(spec, release, deadline=deadline, timeout=timeout, log=log, cancel=cancel)
            return
        except MeshDoesNotRoute as exc:
            self._mesh.record(self._engine_id(), routes=False)
            if self._fallback is IngressFallback.REFUSE:
                raise HealthCheckError(f"{exc}; {FIX}") from exc
            log(f"{exc}", stream=SYSTEM)
            log(host_mode_line(spec, found_now=True), stream=SYSTEM)
            spec = in_host_mode(spec)
            release = self._republish(spec, release, log)
        self._wait(spec, release, deadline=deadline, timeout=timeout, log=log, cancel=cancel)

    def _wait(
        self,
        spec: ServiceSpec,
        release: Release,
        *,
        deadline: float,
        timeout: float,
        log: LogFn,
        cancel: CancelToken,
    ) -> None:
        convergence = Convergence(
            self._client,
            spec=spec,
            release=release,
            log=log,
            probe_host=self._probe_host,
            max_failed_tasks=self._max_failed_tasks,
            min_running_s=self._min_running_s,
            detect_mesh=self._fallback is not IngressFallback.OFF,
        )
        waiting_for: str | None = None
        while True:
            cancel.check()
            missing = self._poll(convergence, spec)
            if convergence.mesh_routes and self._mesh.record(self._engine_id(), routes=True):
                log("Swarm's ingress routing mesh routes on this engine", stream=SYSTEM)
            if missing is None:
                log(f"service {spec.name} is healthy", stream=SYSTEM)
                return
            if missing != waiting_for:
                log(f"waiting: {missing}", stream=SYSTEM)
                waiting_for = missing
            if time.monotonic() >= deadline:
                raise HealthCheckError(
                    f"service {spec.name} did not become healthy within {timeout:g}s: {missing}"
                )
            if cancel.wait(self._poll_interval):
                raise Cancelled(cancel.reason)

    def _poll(self, convergence: Convergence, spec: ServiceSpec) -> str | None:
        try:
            return convergence.poll()
        except (DockerException, OSError) as exc:
            # The engine may be restarting or busy: keep trying until the deadline.
            logger.warning("inspecting service %s failed: %s", spec.name, exc)
            return f"cannot inspect the service: {redact(str(exc), spec.env)}"

    def _republish(self, spec: ServiceSpec, release: Release, log: LogFn) -> Release:
        """Update the released service in place to ``spec`` (its ports now in host mode)."""
        try:
            current = self._client.api.inspect_service(release.service_id)
            force = int(current["Spec"]["TaskTemplate"].get("ForceUpdate", 0))
            tasks = self._client.api.tasks(filters={"service": release.service_id})
            api = authed_api(self._client.api, spec.registry_auth, spec.image)
            result: dict[str, Any] | None = api.update_service(
                release.service_id,
                current["Version"]["Index"],
                fetch_current_spec=False,
                **swarm_service_args(spec, force_update=force).as_kwargs(),
            )
        except (DockerException, OSError) as exc:
            detail = redact(str(exc), spec.env)
            raise HealthCheckError(
                f"could not publish the ports of {spec.name} in host mode: {detail}"
            ) from exc
        for warning in (result or {}).get("Warnings") or []:
            log(f"Docker warning: {warning}", stream=SYSTEM)
        previous = release.previous_tasks | frozenset(t["ID"] for t in tasks)
        return replace(release, previous_tasks=previous, ports=spec.ports)
