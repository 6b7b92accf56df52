"""tasks.py: reading Swarm task and update-status documents."""

from __future__ import annotations

from typing import Any

from app.runtime.tasks import (
    created_at,
    describe_task,
    is_ended,
    is_running,
    strip_digest,
    task_image,
    update_failure,
    update_pending,
)


def task(
    state: str, *, err: str = "", exit_code: int | None = None, **extra: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if err:
        status["Err"] = err
    if exit_code is not None:
        status["ContainerStatus"] = {"ContainerID": "c" * 64, "ExitCode": exit_code}
    return {"ID": "abcdefghijklmnopqrstuvwxy", "Status": status, "DesiredState": "running", **extra}


def test_describe_task() -> None:
    assert describe_task(task("running")) == "task abcdefghijkl running"
    failed = task("failed", err="task: non-zero exit (1)", exit_code=1)
    assert describe_task(failed) == "task abcdefghijkl failed: task: non-zero exit (1)"
    assert (
        describe_task(task("complete", exit_code=0)) == "task abcdefghijkl complete (exit code 0)"
    )


def test_running_and_ended() -> None:
    assert is_running(task("running"))
    assert not is_running(task("running", DesiredState="shutdown"))
    assert not is_running(task("starting"))
    assert all(is_ended(task(s)) for s in ("failed", "rejected", "complete"))
    assert not any(is_ended(task(s)) for s in ("running", "shutdown", "pending"))


def test_images_compare_without_digest() -> None:
    pinned = {"Spec": {"ContainerSpec": {"Image": "web:1@sha256:" + "a" * 64}}}
    assert task_image(task("running", **pinned)) == "web:1"
    assert strip_digest("127.0.0.1:5000/web:1") == "127.0.0.1:5000/web:1"


def test_created_at_sorts_in_time_order_despite_trimmed_zeros() -> None:
    earlier = task("running", CreatedAt="2024-01-01T10:00:00.5Z")
    later = task("running", CreatedAt="2024-01-01T10:00:00.50001Z")
    whole = task("running", CreatedAt="2024-01-01T10:00:01Z")
    assert sorted([whole, later, earlier], key=created_at) == [earlier, later, whole]


def test_rollback_and_pause_are_failures() -> None:
    message = "update rolled back due to failure or early termination of task x"
    for state in ("rollback_started", "rollback_completed", "rollback_paused"):
        failure = update_failure({"State": state, "Message": message})
        assert failure == f"Swarm rolled the update back: {message}"
    assert update_failure({"State": "paused", "Message": "m"}) == "Swarm paused the update: m"
    assert update_failure({"State": "updating"}) is None
    assert update_failure({"State": "completed"}) is None
    assert update_failure(None) is None


def test_an_update_in_progress_is_still_pending() -> None:
    assert update_pending({"State": "updating", "Message": "update in progress"}) == (
        "Swarm has not finished the update yet (update in progress)"
    )
    assert update_pending({"State": "completed"}) is None
    assert update_pending(None) is None
