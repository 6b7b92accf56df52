"""One look at a Swarm service after a release: what is still missing before it is healthy.

``Convergence.poll`` returns ``None`` once every condition holds, a short reason while
waiting, and raises :class:`HealthCheckError` when waiting cannot help (a rollback, a
paused update, a crash loop). It remembers what it saw between polls so that each
change is logged once.
"""

from __future__ import annotations

import time
from typing import Any

from docker.client import DockerClient
from docker.errors import NotFound

from app.errors import HealthCheckError
from app.runtime.base import Release
from app.runtime.containers import container_health, last_log_lines
from app.runtime.mesh import VERDICT_AFTER_S, MeshDoesNotRoute
from app.runtime.probes import http_probe, http_url, tcp_probe
from app.runtime.reach import Answer, container_addresses, probe_container
from app.runtime.tasks import (
    Task,
    created_at,
    describe_task,
    is_ended,
    is_running,
    strip_digest,
    task_image,
    task_state,
    update_failure,
    update_pending,
)
from app.types import LogFn, LogStream, PortSpec, PublishMode, ServiceSpec


class Convergence:
    """Compares the service and its tasks with the release, one poll at a time."""

    def __init__(
        self,
        client: DockerClient,
        *,
        spec: ServiceSpec,
        release: Release,
        log: LogFn,
        probe_host: str,
        max_failed_tasks: int,
        min_running_s: float,
        detect_mesh: bool = False,
    ) -> None:
        self._client = client
        self._spec = spec
        self._release = release
        self._log = log
        self._probe_host = probe_host
        self._max_failed = max_failed_tasks
        self._min_running_s = min_running_s
        self._running_since: dict[str, float] = {}
        self._seen: dict[str, tuple[str, ...]] = {}
        self._update_state: str | None = None
        self._went_unhealthy: dict[str, str] = {}
        self._ended_health: dict[str, tuple[str, str]] = {}
        self._detect_mesh = detect_mesh
        self._addresses: dict[str, list[str]] = {}
        self._mesh_suspect_since: float | None = None
        # Set once an INGRESS port answered: the engine's routing mesh routes.
        self.mesh_routes = False

    def poll(self) -> str | None:
        """``None`` when healthy, else what is still missing; raises when hopeless."""
        status = self._read_update_status()
        tasks = self._release_tasks()
        health = self._health(tasks)
        self._log_changes(tasks, health)
        failure = update_failure(status)
        if failure:
            raise HealthCheckError(self._explain(failure, tasks))
        self._check_failures(tasks)
        running = [t for t in tasks if is_running(t)]
        now = time.monotonic()
        for task in running:
            self._running_since.setdefault(task["ID"], now)
        if len(running) < self._spec.replicas:
            return self._tasks_missing(tasks, len(running), health)
        return (
            self._unhealthy(running, health)
            or self._probe_ports(running)
            or self._unsteady(running)
            or update_pending(status)
        )

    def _system(self, message: str) -> None:
        self._log(message, stream=LogStream.SYSTEM)

    def _read_update_status(self) -> dict[str, Any] | None:
        try:
            attrs = self._client.api.inspect_service(self._release.service_id)
        except NotFound as exc:
            name = self._spec.name
            raise HealthCheckError(f"service {name} was removed while verifying") from exc
        status: dict[str, Any] | None = attrs.get("UpdateStatus")
        state = status.get("State") if status else None
        if status and state != self._update_state:
            self._system(f"service {self._spec.name} update {state}: {status.get('Message', '')}")
        self._update_state = state
        return status

    def _release_tasks(self) -> list[Task]:
        """This release's tasks, oldest first: new since the release, of its image."""
        tasks: list[Task] = self._client.api.tasks(filters={"service": self._release.service_id})
        image = strip_digest(self._spec.image)
        old = self._release.previous_tasks
        mine = [t for t in tasks if t["ID"] not in old and task_image(t) == image]
        return sorted(mine, key=created_at)

    def _explain(self, failure: str, tasks: list[Task]) -> str:
        """``failure``, plus why the last doomed task went and its container's last lines."""
        doomed = self._doomed(tasks)
        if not doomed:
            return failure
        return f"{failure}; {self._why(doomed[-1])}{self._last_lines(doomed[-1])}"

    def _doomed(self, tasks: list[Task]) -> list[Task]:
        # Swarm kills an unhealthy container and replaces its task: count it as ended.
        return [t for t in tasks if is_ended(t) or t["ID"] in self._went_unhealthy]

    def _why(self, task: Task) -> str:
        # A task stopped for being unhealthy often ends "complete" with no error.
        check_output = self._went_unhealthy.get(task["ID"])
        if check_output is None:
            return describe_task(task)
        return f"task {task['ID'][:12]} failed its health check: {check_output}"

    def _last_lines(self, task: Task) -> str:
        lines = last_log_lines(
            self._client, task, service_id=self._release.service_id, env=self._spec.env
        )
        return "\nlast log lines:\n" + "\n".join(lines) if lines else ""

    def _health(self, tasks: list[Task]) -> dict[str, tuple[str, str]]:
        """Container health of the live and ended tasks, when the spec has a health check.

        An ended task's container keeps its last health status: it tells a task Swarm
        stopped for being unhealthy (often ending "complete", no error) from a crash.
        """
        if self._spec.health_check is None:
            return {}
        result: dict[str, tuple[str, str]] = {}
        for task in tasks:
            ended = is_ended(task)
            if not ended and task.get("DesiredState") != "running":
                continue
            health = self._ended_health.get(task["ID"])
            if health is None:
                health = container_health(self._client, task, env=self._spec.env)
                if ended:
                    self._ended_health[task["ID"]] = health
            result[task["ID"]] = health
            if health[0] == "unhealthy":
                self._went_unhealthy[task["ID"]] = health[1] or "health check failed"
        return result

    def _log_changes(self, tasks: list[Task], health: dict[str, tuple[str, str]]) -> None:
        for task in tasks:
            status, output = health.get(task["ID"], ("", ""))
            seen = (*task_state(task), status)
            if self._seen.get(task["ID"]) == seen:
                continue
            self._seen[task["ID"]] = seen
            line = describe_task(task)
            if status:
                line += f" (container health: {status})"
            if status == "unhealthy" and output:
                line += f": {output}"
            self._system(line)

    def _check_failures(self, tasks: list[Task]) -> None:
        doomed = self._doomed(tasks)
        if len(doomed) < self._max_failed:
            return
        raise HealthCheckError(
            f"service {self._spec.name} keeps failing: {len(doomed)} tasks of "
            f"{self._spec.image} ended; last: {self._why(doomed[-1])}"
            + self._last_lines(doomed[-1])
        )

    def _tasks_missing(
        self, tasks: list[Task], running: int, health: dict[str, tuple[str, str]]
    ) -> str:
        message = f"{running}/{self._spec.replicas} tasks of {self._spec.image} running"
        if not tasks:
            return message
        latest = tasks[-1]
        status, output = health.get(latest["ID"], ("", ""))
        detail = f", container health {status} {output}".rstrip() if status else ""
        return f"{message} (latest: {describe_task(latest)}{detail})"

    def _unhealthy(self, running: list[Task], health: dict[str, tuple[str, str]]) -> str | None:
        for task in running:
            status, output = health.get(task["ID"], ("unknown", ""))
            # "unknown": on another node, where Swarm marks it running only once healthy.
            if not status:
                return f"task {task['ID'][:12]} has no container yet"
            if status not in ("healthy", "unknown"):
                return f"task {task['ID'][:12]} container health check is {status} {output}".strip()
        return None

    def _probe_ports(self, running: list[Task]) -> str | None:
        if not self._spec.ports:
            return None
        port = self._spec.ports[0]
        failure = tcp_probe(self._probe_host, port.published_port)
        if failure:
            return self._port_failure(port, failure, running[0] if running else None)
        self._mesh_suspect_since = None
        if port.publish_mode is PublishMode.INGRESS:
            self.mesh_routes = True
        if self._spec.health_check_path is None:
            return None
        return http_probe(
            http_url(self._probe_host, port.published_port, self._spec.health_check_path)
        )

    def _port_failure(self, port: PortSpec, failure: str, task: Task | None) -> str:
        """What failed, and whether the app answers at its own container (which tells a
        port that does not route from an app that does not listen)."""
        where = f"port {port.published_port} on {self._probe_host}"
        message = f"{where} does not answer: {failure}"
        if task is None:
            return message
        if task["ID"] not in self._addresses:
            self._addresses[task["ID"]] = container_addresses(self._client, task)
        answer = probe_container(self._addresses[task["ID"]], port.target_port)
        clause = answer.describe(port.target_port)
        if answer.answer is not Answer.ANSWERS:
            self._mesh_suspect_since = None
            return f"{message}; {clause}"
        if port.publish_mode is PublishMode.HOST:
            return (
                f"{message}; {clause} but the host-mode port does not (is "
                f"{self._probe_host} an address of the node running the task?)"
            )
        now = time.monotonic()
        since = self._mesh_suspect_since = self._mesh_suspect_since or now
        if self._detect_mesh and now - since >= VERDICT_AFTER_S:
            container = f"{answer.address}:{port.target_port}"
            raise MeshDoesNotRoute(
                port=port.published_port, host=self._probe_host, container=container
            )
        return f"{message}; {clause} but the published port does not route (Swarm's routing mesh)"

    def _unsteady(self, running: list[Task]) -> str | None:
        # A crash-looping task is "running" for a moment between restarts: only tasks
        # seen running for a while count.
        now = time.monotonic()
        since = [self._running_since[t["ID"]] for t in running]
        steady = sum(1 for start in since if now - start >= self._min_running_s)
        if steady >= self._spec.replicas:
            return None
        return f"tasks running for less than {self._min_running_s:g}s; watching them stay up"
