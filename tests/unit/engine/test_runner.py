"""The runner with fakes: claims, the status machine, outcomes, cancellation, recovery."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

from app.db.base import utcnow
from app.db.models import Application
from app.db.repos import deployments
from app.engine.recovery import reap_dead
from app.logs.messages import Changed
from app.types import DeploymentTrigger
from tests.unit.engine.conftest import World


def _row(world: World, dep_id: str) -> tuple[str, str | None, str]:
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        app = session.get(Application, dep.application_id)
        assert app is not None
        return dep.status, dep.error_message, app.status


def test_success_walks_queued_running_done(world: World) -> None:
    app_id = world.app()
    dep_id = world.submit(app_id).deployment.id
    assert _row(world, dep_id) == ("QUEUED", None, "IDLE")
    assert world.engine.run(dep_id)
    assert _row(world, dep_id) == ("DONE", None, "DONE")
    statuses = [
        m.status
        for t, m in world.bus.sent
        if t == f"deployment:{dep_id}" and isinstance(m, Changed) and m.status
    ]
    assert statuses == ["QUEUED", "RUNNING", "DONE"]
    assert world.runtime.released[0].env == {"SECRET": "top-secret-value"}


def test_a_second_run_of_the_same_message_does_nothing(world: World) -> None:
    dep_id = world.submit(world.app()).deployment.id
    assert world.engine.run(dep_id)
    assert not world.engine.run(dep_id), "a duplicate message must not run it twice"
    assert len(world.git.clones) == 1


def test_only_the_head_of_an_applications_queue_is_claimed(world: World) -> None:
    app_id = world.app()
    first = world.submit(app_id).deployment.id
    second = world.submit(app_id, DeploymentTrigger.REBUILD).deployment.id
    assert not world.engine.run(second), "second must wait for first"
    assert _row(world, second)[0] == "QUEUED"
    assert world.engine.run(first) and world.engine.run(second)
    assert _row(world, second)[0] == "DONE"


def test_health_failure_is_error_with_reason_never_done(world: World) -> None:
    world.runtime.verify_error = "service web did not become healthy within 5s: port 8080"
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    status, error, app_status = _row(world, dep_id)
    assert (status, app_status) == ("ERROR", "ERROR")
    assert error is not None and "port 8080" in error


def test_secrets_in_errors_are_masked(world: World) -> None:
    world.builder.fail = "login failed for top-secret-value"
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    _, error, _ = _row(world, dep_id)
    assert error is not None and "top-secret-value" not in error and "********" in error


def test_unexpected_exception_is_an_error_not_a_stuck_run(world: World) -> None:
    def boom(*_: object, **__: object) -> str:
        raise RuntimeError("kaput")

    world.builder.build = boom  # type: ignore[method-assign]
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    status, error, _ = _row(world, dep_id)
    assert status == "ERROR" and error == "internal error: RuntimeError"


def test_cancel_request_stops_a_running_deployment(world: World) -> None:
    world.runtime.hang = True
    dep_id = world.submit(world.app()).deployment.id
    runner = threading.Thread(target=world.engine.run, args=(dep_id,))
    runner.start()
    while _row(world, dep_id)[0] != "RUNNING":
        threading.Event().wait(0.01)
    with world.db.session() as session:
        deployments.require(session, dep_id).cancel_requested = True
    runner.join(timeout=10)
    assert not runner.is_alive()
    status, error, app_status = _row(world, dep_id)
    assert status == "CANCELLED" and app_status == "IDLE" and error


def test_rebuild_does_not_fetch(world: World) -> None:
    app_id = world.app()
    world.engine.run(world.submit(app_id).deployment.id)
    rebuild = world.submit(app_id, DeploymentTrigger.REBUILD).deployment.id
    world.engine.run(rebuild)
    assert _row(world, rebuild)[0] == "DONE"
    assert len(world.git.clones) == 1 and len(world.builder.builds) == 2


def test_reaper_turns_a_dead_workers_run_into_error(world: World) -> None:
    dep_id = world.submit(world.app()).deployment.id
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        dep.status, dep.pid, dep.worker = "RUNNING", 999_999_999, "elsewhere:1"
        dep.heartbeat_at = utcnow() - timedelta(minutes=5)
    assert reap_dead(db=world.db, bus=world.bus, stale_after=60, default_timeout=1800) == [  # type: ignore[arg-type]
        dep_id
    ]
    status, error, _ = _row(world, dep_id)
    assert status == "ERROR" and error and error.startswith("worker lost")


def test_reaper_leaves_live_runs_alone(world: World) -> None:
    import socket

    dep_id = world.submit(world.app()).deployment.id
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        dep.status, dep.pid = "RUNNING", os.getpid()
        dep.worker, dep.heartbeat_at = f"{socket.gethostname()}:{os.getpid()}", utcnow()
    assert reap_dead(db=world.db, bus=world.bus, stale_after=60, default_timeout=1800) == []  # type: ignore[arg-type]


def test_queued_heads_are_the_oldest_per_application(world: World) -> None:
    a, b = world.app(), world.app()
    a1, b1 = world.submit(a).deployment.id, world.submit(b).deployment.id
    a2 = world.submit(a, DeploymentTrigger.REBUILD).deployment.id
    with world.db.session() as session:
        assert list(deployments.queued_heads(session)) == [a1, b1]
    world.engine.run(a1)
    with world.db.session() as session:
        assert list(deployments.queued_heads(session)) == [b1, a2]
