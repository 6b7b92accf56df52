"""What the engine says about a watched application, as :class:`Observation` values.

Three sources, all read on the engine the watcher follows:

- a container ``die`` event: the task is inspected until Swarm has recorded how it ended
  (``failed``/``rejected``/``complete`` is the application going down; ``shutdown`` is
  Swarm stopping it on purpose and says nothing), with the container's exit code, OOM
  flag and last log lines (its environment's values masked);
- ``exec_die`` / ``health_status`` events: the container's health (its failing streak
  against the threshold, or healthy again);
- a task listing (:meth:`Observer.check`): a slot with no running task whose newest task
  failed, was rejected or waits with a scheduler error is DOWN (dated when Swarm recorded
  it, so one that predates the last recovery is dropped); every task running, healthy,
  for the recovery period is UP; running but not for long enough yet asks to look again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from docker.client import DockerClient
from docker.errors import DockerException, NotFound
from requests.exceptions import RequestException

from app.monitor.incidents import Observation, Seen
from app.runtime.redact import redact
from app.runtime.tasks import Task, container_id, created_at, task_state

log = logging.getLogger(__name__)

LOG_TAIL = 20
SETTLED_STATES = frozenset({"failed", "rejected", "complete", "shutdown", "remove", "orphaned"})
DOWN_STATES = frozenset({"failed", "rejected", "complete"})
_ENGINE_ERRORS = (DockerException, RequestException, OSError)


def event_time(event: dict[str, Any]) -> datetime:
    ns = int(event.get("timeNano") or int(event.get("time", 0)) * 1_000_000_000)
    return datetime.fromtimestamp(ns / 1e9, UTC)


def docker_time(raw: str | None) -> datetime | None:
    """An Engine API timestamp (RFC 3339 with nanoseconds) as an aware datetime."""
    if not raw or raw.startswith("0001-"):
        return None
    sortable = created_at({"CreatedAt": raw})  # nanoseconds padded to nine digits
    try:
        base, frac = sortable.rstrip("Z").split(".")
        return datetime.fromisoformat(f"{base}.{frac[:6]}+00:00")
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a listing: an observation, or when to look again (or neither)."""

    observation: Observation | None = None
    again_in: float | None = None


class Observer:
    """Reads one engine; every call answers from the engine now (no caching)."""

    def __init__(
        self,
        client: DockerClient,
        *,
        health_failures: int,
        recovery_s: float,
        settle_s: float = 3.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = client.api
        self._health_failures = health_failures
        self._recovery_s = recovery_s
        self._settle_s = settle_s
        self._clock = clock

    def died(
        self, event: dict[str, Any], *, deployment_id: str, env: dict[str, str]
    ) -> Observation | None:
        """A container of the application exited: DOWN, unless Swarm stopped it."""
        attrs = event.get("Actor", {}).get("Attributes", {})
        task_id = attrs.get("com.docker.swarm.task.id")
        if not task_id:
            return None
        task = self._settled_task(task_id)
        if task is None:
            return None  # the service is gone (removed on purpose)
        state, error = task_state(task)
        exit_code = _int(attrs.get("exitCode"))
        if state not in DOWN_STATES and (state in SETTLED_STATES or not exit_code):
            return None  # stopped by Swarm (an update, a scale-down, a removal)
        cid = str(event.get("Actor", {}).get("ID") or event.get("id") or "")
        detail: dict[str, Any] = {
            "task_id": task_id,
            "exit_code": exit_code,
            "oom_killed": False,
            "reason": redact(error, env) or f"the container exited with code {exit_code}",
        }
        detail.update(self._container_end(cid, env))
        return Observation(Seen.DOWN, event_time(event), deployment_id, detail)

    def health(
        self, event: dict[str, Any], *, deployment_id: str, env: dict[str, str]
    ) -> Observation | None:
        """A health check ran (or the health status changed): FAILING once the streak of
        failed checks reaches the threshold."""
        cid = str(event.get("Actor", {}).get("ID") or event.get("id") or "")
        try:
            state = self._api.inspect_container(cid)["State"]
        except _ENGINE_ERRORS:
            return None
        health = state.get("Health") or {}
        streak = int(health.get("FailingStreak") or 0)
        if streak < self._health_failures or not state.get("Running"):
            return None
        checks = health.get("Log") or [{}]
        output = redact(str(checks[-1].get("Output", "")).strip(), env)[-500:]
        detail = {"failing_streak": streak, "output": output, "health": health.get("Status")}
        return Observation(Seen.FAILING, event_time(event), deployment_id, detail)

    def list_tasks(self) -> dict[str, list[Task]]:
        """Every task on the engine (history included), by the application label."""
        grouped: dict[str, list[Task]] = {}
        for task in self._api.tasks():
            labels = task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}
            app_id = labels.get("slipway.application")
            if app_id:
                grouped.setdefault(app_id, []).append(task)
        return grouped

    def app_tasks(self, service_name: str) -> list[Task]:
        """The tasks of one application's service (history included)."""
        tasks: list[Task] = self._api.tasks(filters={"service": service_name})
        return tasks

    def check(
        self, tasks: list[Task], *, deployment_id: str, replicas: int, env: dict[str, str]
    ) -> Verdict:
        """DOWN, UP or look again, from the application's tasks (see the module's text)."""
        now = self._clock()
        mine = [t for t in tasks if _deployment(t) == deployment_id]
        if not mine:
            return Verdict()
        running = [t for t in mine if t.get("DesiredState") == "running" and _state(t) == "running"]
        if len(running) < max(replicas, 1):
            return Verdict(self._failure(mine, deployment_id, env), again_in=1.0)
        since = [docker_time(t.get("Status", {}).get("Timestamp")) for t in running]
        stable_at = max((s or now) for s in since) + timedelta(seconds=self._recovery_s)
        if stable_at > now:
            return Verdict(again_in=(stable_at - now).total_seconds())
        for task in running:
            status = self._container_health(task)
            if status not in ("healthy", "none", "unknown"):
                return Verdict(again_in=1.0)  # starting or unhealthy: not up yet
        return Verdict(Observation(Seen.UP, now, deployment_id))

    def _failure(
        self, tasks: list[Task], deployment_id: str, env: dict[str, str]
    ) -> Observation | None:
        """The newest failure among the tasks: ended badly, or pending with an error."""
        candidates = [
            t
            for t in tasks
            if _state(t) in DOWN_STATES
            or (t.get("DesiredState") == "running" and task_state(t)[1] and _state(t) != "running")
        ]
        if not candidates:
            return None
        task = max(candidates, key=lambda t: str(t.get("Status", {}).get("Timestamp", "")))
        state, error = task_state(task)
        at = docker_time(task.get("Status", {}).get("Timestamp")) or self._clock()
        code = task.get("Status", {}).get("ContainerStatus", {}).get("ExitCode")
        detail: dict[str, Any] = {
            "task_id": task.get("ID"),
            "exit_code": code if state in ("failed", "complete") else None,
            "oom_killed": False,
            "reason": redact(error, env) or f"the task is {state}",
            "rejected": state == "rejected" or state == "pending",
        }
        cid = container_id(task)
        if cid:
            detail.update(self._container_end(cid, env))
        return Observation(Seen.DOWN, at, deployment_id, detail)

    def _settled_task(self, task_id: str) -> Task | None:
        """The task once Swarm recorded how it ended, or as it is after ``settle_s``."""
        deadline = time.monotonic() + self._settle_s
        while True:
            try:
                task: Task = self._api.inspect_task(task_id)
            except NotFound:
                return None
            if _state(task) in SETTLED_STATES or time.monotonic() >= deadline:
                return task
            time.sleep(0.05)

    def _container_end(self, cid: str, env: dict[str, str]) -> dict[str, Any]:
        """Exit code, OOM flag, the engine's error and the last log lines of a container."""
        if not cid:
            return {}
        found: dict[str, Any] = {}
        try:
            state = self._api.inspect_container(cid)["State"]
            found["exit_code"] = state.get("ExitCode")
            found["oom_killed"] = bool(state.get("OOMKilled"))
            if state.get("Error"):
                found["engine_error"] = redact(str(state["Error"]), env)
            raw = bytes(self._api.logs(cid, tail=LOG_TAIL))
            found["logs"] = redact(raw.decode("utf-8", "replace"), env).splitlines()[-LOG_TAIL:]
        except _ENGINE_ERRORS as exc:  # on another node, or already removed
            log.debug("container %s: %s", cid[:12], exc)
        return found

    def _container_health(self, task: Task) -> str:
        cid = container_id(task)
        if cid is None:
            return "unknown"
        try:
            state = self._api.inspect_container(cid)["State"]
        except _ENGINE_ERRORS:
            return "unknown"  # on another node: Swarm's running state decides
        return str((state.get("Health") or {}).get("Status", "none"))


def _state(task: Task) -> str:
    return task_state(task)[0]


def _deployment(task: Task) -> str | None:
    labels = task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}
    value = labels.get("slipway.deployment")
    return str(value) if value else None


def _int(raw: object) -> int | None:
    try:
        return int(str(raw))
    except ValueError:
        return None
