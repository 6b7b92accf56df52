"""What the engine knows about a task's container: its health, its last log lines.

Containers are inspected on the engine we talk to, so this sees the local node's
tasks only; elsewhere it answers "unknown" and Swarm's own task states decide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from docker.client import DockerClient
from docker.errors import DockerException, NotFound

from app.runtime.redact import redact
from app.runtime.tasks import Task, container_id

logger = logging.getLogger(__name__)

LOG_TAIL = 20


def container_health(client: DockerClient, task: Task, *, env: dict[str, str]) -> tuple[str, str]:
    """``(status, last check output)``; status is "" before the task has a container
    and ``unknown`` when the container is not on this engine's node."""
    cid = container_id(task)
    if cid is None:
        return "", ""
    try:
        state = client.api.inspect_container(cid)["State"]
    except NotFound:
        return "unknown", ""  # on another node
    health = state.get("Health") or {}
    checks = health.get("Log") or [{}]
    output = str(checks[-1].get("Output", "")).strip()
    return str(health.get("Status", "none")), redact(output, env)[:200]


def last_log_lines(
    client: DockerClient, task: Task, *, service_id: str, env: dict[str, str]
) -> list[str]:
    """The task's container's last lines, else the service's; [] when neither answers."""
    api = client.api
    cid = container_id(task)
    fetchers: list[Callable[[], bytes]] = []
    if cid:
        fetchers.append(lambda: bytes(api.logs(cid, tail=LOG_TAIL)))
    fetchers.append(
        lambda: b"".join(
            api.service_logs(service_id, stdout=True, stderr=True, tail=LOG_TAIL, is_tty=False)
        )
    )
    for fetch in fetchers:
        try:
            raw = fetch()
        except (DockerException, OSError) as exc:
            logger.debug("no logs for task %s: %s", task["ID"], exc)
            continue
        return redact(raw.decode("utf-8", "replace"), env).splitlines()[-LOG_TAIL:]
    return []
