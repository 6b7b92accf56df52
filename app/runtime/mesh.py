"""Does Swarm's ingress routing mesh route on this engine? Learned once, then acted on.

The mesh needs IPVS in the kernel of every node; where it is missing (many containers,
LXC, some VMs) an INGRESS-published port answers nothing while host-mode ports work.
Slipway learns the answer per engine from the first deployment that publishes an
INGRESS port there: VERIFY_HEALTH sees its tasks running, the published port not
answering, and the app answering at its own container (``app.runtime.reach``) for
``VERDICT_AFTER_S`` → the mesh does not route; the published port answering → it does.
The answer is kept per engine (its Docker ID) for the life of the process.

What follows is ``SLIPWAY_INGRESS_FALLBACK``:

- ``host`` (default): INGRESS ports are published in host mode on such an engine (the
  deployment that found out is switched in place), with a log line saying why;
- ``refuse``: such a deployment fails at once with the reason and the fix;
- ``off``: nothing is changed; VERIFY_HEALTH's error still says what it saw.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import replace

from app.errors import HealthCheckError, ReleaseError
from app.types import LogFn, LogStream, PortSpec, PublishMode, ServiceSpec

VERDICT_AFTER_S = 2.0  # the port may lag the task by a moment while Swarm sets it up


class IngressFallback(enum.StrEnum):
    HOST = "host"
    REFUSE = "refuse"
    OFF = "off"


class MeshDoesNotRoute(HealthCheckError):
    """Raised by a verification that proved the mesh does not route on its engine."""

    def __init__(self, *, port: int, host: str, container: str) -> None:
        super().__init__(
            f"the app answers on its container ({container}) but the published port "
            f"{port} on {host} does not route: {NO_MESH}"
        )
        self.port = port


NO_MESH = (
    "Swarm's ingress routing mesh does not route on this engine "
    "(no IPVS in its kernel, as in many containers, LXC and some VMs)"
)
FIX = (
    "publish the port with publishMode: HOST (it then answers on the node running the task), "
    "or set SLIPWAY_INGRESS_FALLBACK=host to let Slipway do it"
)


class MeshVerdicts:
    """Per engine (its Docker ID): True routes, False does not, absent not known yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, bool] = {}

    def get(self, engine_id: str) -> bool | None:
        with self._lock:
            return self._routes.get(engine_id)

    def record(self, engine_id: str, *, routes: bool) -> bool:
        """Keep the answer; True when it is news (first seen, or changed)."""
        with self._lock:
            news = self._routes.get(engine_id) is not routes
            self._routes[engine_id] = routes
            return news


def ingress_ports(spec: ServiceSpec) -> list[PortSpec]:
    return [p for p in spec.ports if p.publish_mode is PublishMode.INGRESS]


def in_host_mode(spec: ServiceSpec) -> ServiceSpec:
    """``spec`` with every port published in host mode."""
    ports = tuple(replace(p, publish_mode=PublishMode.HOST) for p in spec.ports)
    return replace(spec, ports=ports)


def host_mode_line(spec: ServiceSpec, *, found_now: bool) -> str:
    ports = ", ".join(str(p.published_port) for p in ingress_ports(spec))
    when = "as this deployment just found" if found_now else "as found earlier"
    return (
        f"publishing port(s) {ports} of {spec.name} in host mode instead of INGRESS: "
        f"{NO_MESH}, {when}; host-mode ports answer on the node that runs the task "
        "(SLIPWAY_INGRESS_FALLBACK=refuse refuses such deployments instead)"
    )


def refusal(spec: ServiceSpec) -> str:
    ports = ", ".join(str(p.published_port) for p in ingress_ports(spec))
    return f"port(s) {ports} of {spec.name} are published INGRESS, but {NO_MESH}: {FIX}"


def for_engine(
    spec: ServiceSpec, *, routes: bool | None, mode: IngressFallback, log: LogFn
) -> ServiceSpec:
    """The spec to release on an engine whose mesh ``routes`` (None: not known yet)."""
    if routes is not False or mode is IngressFallback.OFF or not ingress_ports(spec):
        return spec
    if mode is IngressFallback.REFUSE:
        raise ReleaseError(refusal(spec))
    log(host_mode_line(spec, found_now=False), stream=LogStream.SYSTEM)
    return in_host_mode(spec)
