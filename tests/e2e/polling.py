"""Waiting for deployments to reach a state or a step, and timing a cancel, over the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.e2e.harness import Client

T = TypeVar("T")

STATE = """
query($id: ID!) { deployment(id: $id) { id status startedAt finishedAt errorMessage
  cancelRequested imageRef steps { step outcome } application { id status } } }"""

CANCEL = """
mutation($id: ID!) { cancelDeployment(applicationId: $id) { id status } }"""

LOGS = """
query($id: ID!) { deployment(id: $id) { logs(afterSeq: 0, limit: 10000) { message } } }"""

TERMINAL = frozenset({"DONE", "ERROR", "CANCELLED"})


def poll(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.05) -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(every)


def state(client: Client, dep_id: str) -> dict[str, Any]:
    dep: dict[str, Any] = client(STATE, id=dep_id)["deployment"]
    return dep


def wait_status(client: Client, dep_id: str, *statuses: str, timeout: float) -> dict[str, Any]:
    """The deployment once its status is one of ``statuses`` (fails if it ends otherwise)."""

    def check() -> dict[str, Any] | None:
        dep = state(client, dep_id)
        if dep["status"] in statuses:
            return dep
        assert dep["status"] not in TERMINAL, f"deployment ended {dep['status']}: {dep}"
        return None

    return poll(check, timeout=timeout, what=f"deployment {dep_id} to be {statuses}")


def wait_step(client: Client, dep_id: str, step: str, *, timeout: float) -> dict[str, Any]:
    """The deployment once ``step`` has started and not yet ended."""

    def check() -> dict[str, Any] | None:
        dep = state(client, dep_id)
        assert dep["status"] not in TERMINAL, f"deployment ended before {step}: {dep}"
        current = dep["steps"][-1] if dep["steps"] else None
        if current and current["step"] == step and current["outcome"] == "RUNNING":
            return dep
        return None

    return poll(check, timeout=timeout, what=f"deployment {dep_id} to be in {step}", every=0.2)


def messages(client: Client, dep_id: str) -> list[str]:
    lines = client(LOGS, id=dep_id)["deployment"]["logs"]
    return [line["message"] for line in lines]


def timed_cancel(
    client: Client, app_id: str, dep_id: str, *, timeout: float = 30
) -> tuple[float, dict[str, Any], dict[str, Any] | None]:
    """Send cancelDeployment, then wait for ``dep_id`` to end.

    Returns (seconds from sending the mutation to the ended status, the ended deployment,
    what the mutation returned).
    """
    started = time.monotonic()
    returned = client(CANCEL, id=app_id)["cancelDeployment"]

    def ended() -> dict[str, Any] | None:
        dep = state(client, dep_id)
        return dep if dep["status"] in TERMINAL else None

    dep = poll(ended, timeout=timeout, what=f"deployment {dep_id} to end after a cancel")
    return time.monotonic() - started, dep, returned
