"""Reading Swarm's task and update-status documents (plain dicts from the Engine API)."""

from __future__ import annotations

import re
from typing import Any

Task = dict[str, Any]

BAD_UPDATE_STATES = frozenset(
    {"rollback_started", "rollback_completed", "rollback_paused", "paused"}
)
# A task of a long-running service that reached one of these will not come back.
ENDED_STATES = frozenset({"failed", "rejected", "complete"})


def strip_digest(image: str) -> str:
    """``name:tag@sha256:...`` -> ``name:tag``: the engine may pin what we sent."""
    return image.split("@", 1)[0]


def task_image(task: Task) -> str:
    """The image a task runs, without a pinned digest."""
    return strip_digest(str(task.get("Spec", {}).get("ContainerSpec", {}).get("Image", "")))


_TIMESTAMP = re.compile(r"^(?P<base>[^.Z]+)(?:\.(?P<frac>\d+))?Z$")


def created_at(task: Task) -> str:
    """The task's creation time as a string that sorts in time order.

    Docker trims trailing zeros from the nanoseconds, so the raw strings do not.
    """
    raw = str(task.get("CreatedAt", ""))
    match = _TIMESTAMP.match(raw)
    if match is None:
        return raw
    return f"{match['base']}.{(match['frac'] or '').ljust(9, '0')}Z"


def task_state(task: Task) -> tuple[str, str]:
    """``(state, error)`` of a task; error is "" when Docker gave none."""
    status = task.get("Status", {})
    return str(status.get("State", "unknown")), str(status.get("Err", ""))


def container_id(task: Task) -> str | None:
    """The container of the task, once it has one."""
    cid = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
    return str(cid) if cid else None


def is_running(task: Task) -> bool:
    """Meant to run and running."""
    return task.get("DesiredState") == "running" and task_state(task)[0] == "running"


def is_ended(task: Task) -> bool:
    """Failed, rejected or exited: Swarm replaces it with a new task."""
    return task_state(task)[0] in ENDED_STATES


def describe_state(task: Task) -> str:
    """``failed: <err>``, ``complete (exit code 0)`` or ``running``."""
    state, err = task_state(task)
    if err:
        return f"{state}: {err}"
    exit_code = task.get("Status", {}).get("ContainerStatus", {}).get("ExitCode")
    if state in ENDED_STATES and exit_code is not None:
        return f"{state} (exit code {exit_code})"
    return state


def describe_task(task: Task) -> str:
    """``task abc123 failed: <err>``, ``task abc123 running`` ..."""
    return f"task {task['ID'][:12]} {describe_state(task)}"


def update_failure(status: dict[str, Any] | None) -> str | None:
    """The error when Swarm rolled an update back or paused it, else ``None``."""
    if not status or status.get("State") not in BAD_UPDATE_STATES:
        return None
    message = status.get("Message") or status["State"]
    if status["State"] == "paused":
        return f"Swarm paused the update: {message}"
    return f"Swarm rolled the update back: {message}"


def update_pending(status: dict[str, Any] | None) -> str | None:
    """What to wait for while Swarm is still rolling an update out, else ``None``."""
    if not status or status.get("State") in (None, "completed"):
        return None
    message = status.get("Message") or status["State"]
    return f"Swarm has not finished the update yet ({message})"
