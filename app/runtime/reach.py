"""Does the app answer at its own container? Tells "the port does not route" from
"the app does not listen".

A task's container has addresses the engine's host can reach without Swarm's routing
mesh: its endpoint on ``docker_gwbridge`` (every task with an overlay or ingress network
has one) and its addresses on local bridge networks (a task with no network is on
``bridge``). Overlay addresses (``ingress`` included) are not reachable from the host.
These are probed only when the published port does not answer, and only from a process
on the engine's host can they answer (elsewhere the probe says it could not tell).
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass
from typing import Any

from docker.client import DockerClient
from docker.errors import DockerException

from app.runtime.tasks import Task

GWBRIDGE = "docker_gwbridge"
CONNECT_TIMEOUT_S = 0.5


class Answer(enum.Enum):
    ANSWERS = "answers"  # something accepted a connection at the container's target port
    REFUSED = "refused"  # the container is reachable, nothing listens on the target port
    UNKNOWN = "unknown"  # no address of the container could be reached from here


@dataclass(frozen=True, slots=True)
class ContainerAnswer:
    answer: Answer
    address: str | None = None  # the address that answered or refused

    def describe(self, target_port: int) -> str:
        """One clause for a progress line or an error message."""
        if self.answer is Answer.ANSWERS:
            return f"the app answers on its container ({self.address}:{target_port})"
        if self.answer is Answer.REFUSED:
            return (
                f"the app does not listen on targetPort {target_port} (its container at "
                f"{self.address} refused the connection): check the port the app listens on"
            )
        return (
            "could not reach the task's container from here to tell whether the app "
            f"listens on targetPort {target_port}"
        )


def container_addresses(client: DockerClient, task: Task) -> list[str]:
    """IPv4 addresses of the task's container that this host can reach (may be empty)."""
    container_id = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
    if not container_id:
        return []
    try:
        attrs: dict[str, Any] = client.api.inspect_container(container_id)
        gateway = client.api.inspect_network(GWBRIDGE).get("Containers") or {}
    except DockerException:
        return []
    found: list[str] = []
    entry = gateway.get(container_id) or {}
    if address := str(entry.get("IPv4Address") or "").split("/")[0]:
        found.append(address)
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for name, net in networks.items():
        if _is_local_bridge(client, name) and (address := net.get("IPAddress")):
            found.append(str(address))
    return found


def _is_local_bridge(client: DockerClient, name: str) -> bool:
    try:
        network: dict[str, Any] = client.api.inspect_network(name)
    except DockerException:
        return False
    return network.get("Driver") == "bridge" and network.get("Scope") == "local"


def probe_container(addresses: list[str], port: int) -> ContainerAnswer:
    """Connect to ``port`` at each address; the first that answers or refuses decides."""
    for address in addresses:
        try:
            with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S):
                return ContainerAnswer(Answer.ANSWERS, address)
        except ConnectionRefusedError:
            return ContainerAnswer(Answer.REFUSED, address)
        except OSError:
            continue
    return ContainerAnswer(Answer.UNKNOWN)
