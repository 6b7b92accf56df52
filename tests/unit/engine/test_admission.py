"""Admission, the queue, cancel, kill, time limits, retries and retention, with fakes,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.db.base import utcnow
from app.db.models import Application
from app.db.repos import deployments, servers
from app.engine import control, steps
from app.engine.recovery import reap_dead
from app.engine.retention import prune_application, prune_images
from app.errors import Conflict
from app.queue.actors import declare
from app.queue.broker import make_broker
from app.queue.worker import kick_queued
from app.types import DeploymentTrigger
from tests.unit.engine.conftest import World

WHO = "API key 'tester'"


def _status(world: World, dep_id: str) -> tuple[str, str | None]:
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        return dep.status, dep.error_message


def _app_status(world: World, app_id: str) -> str:
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        return row.status


def _log(world: World, dep_id: str) -> str:
    with world.db.session() as session:
        return Path(deployments.require(session, dep_id).log_path).read_text()


def _start_hanging(world: World, app_id: str) -> tuple[str, threading.Thread]:
    """A deployment RUNNING in a thread, stuck in VERIFY_HEALTH until stopped."""
    world.runtime.hang = True
    dep_id = world.submit(app_id).deployment.id
    runner = threading.Thread(target=world.engine.run, args=(dep_id,))
    runner.start()
    deadline = time.monotonic() + 10
    # This deployment's own release: an earlier deployment of the same test may already
    # have released, and a cancel landing before this one's release would undo nothing.
    while not _released(world, dep_id) or _status(world, dep_id)[0] != "RUNNING":
        assert time.monotonic() < deadline, "the deployment never reached its release"
        time.sleep(0.01)
    return dep_id, runner


def _released(world: World, dep_id: str) -> bool:
    """Whether the runtime has been asked to release ``dep_id``'s service."""
    specs = list(world.runtime.released)  # appended to by the runner's thread
    return any(spec.labels.get("slipway.deployment") == dep_id for spec in specs)


def test_an_equal_queued_request_returns_the_queued_one(world: World) -> None:
    app_id = world.app()
    first = world.submit(app_id)
    again = world.submit(app_id)
    other = world.submit(app_id, DeploymentTrigger.REBUILD)
    assert not first.duplicate and again.duplicate
    assert again.deployment.id == first.deployment.id
    assert other.deployment.id != first.deployment.id and not other.duplicate


def test_a_scheduled_deployment_waits_for_its_time(world: World) -> None:
    app_id = world.app()
    sub = world.submit(app_id, scheduled_at=utcnow() + timedelta(seconds=0.5))
    dep_id = sub.deployment.id
    assert _status(world, dep_id)[0] == "SCHEDULED"
    assert not world.engine.run(dep_id), "it must not start before its time"
    time.sleep(0.6)
    assert world.engine.run(dep_id)
    assert _status(world, dep_id)[0] == "DONE"


def test_due_scheduled_deployments_are_promoted_by_the_sweep(world: World) -> None:
    app_id = world.app()
    dep_id = world.submit(app_id, scheduled_at=utcnow() + timedelta(seconds=0.2)).deployment.id
    time.sleep(0.3)
    kick_queued(world.db, declare(make_broker(world.settings)))
    assert _status(world, dep_id)[0] == "QUEUED"


def test_cancel_ends_queued_deployments_at_once_with_who(world: World) -> None:
    app_id = world.app()
    queued = world.submit(app_id).deployment.id
    row = control.cancel_application(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        application_id=app_id,
        who=WHO,
    )
    assert row is not None and row.id == queued
    assert _status(world, queued) == ("CANCELLED", f"cancelled by {WHO}")
    assert f"cancelled by {WHO}" in _log(world, queued)
    assert not world.engine.run(queued), "a cancelled deployment never starts"
    assert world.git.clones == []


def test_cancel_stops_a_running_release_rolls_it_back_and_restores_the_status(
    world: World,
) -> None:
    app_id = world.app()
    assert world.engine.run(world.submit(app_id).deployment.id)
    assert _app_status(world, app_id) == "DONE"
    good_image = world.runtime.services[next(iter(world.runtime.services))].image
    dep_id, runner = _start_hanging(world, app_id)
    assert _app_status(world, app_id) == "RUNNING"
    asked = time.monotonic()
    control.cancel_application(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        application_id=app_id,
        who=WHO,
    )
    runner.join(timeout=5)
    assert not runner.is_alive() and time.monotonic() - asked < 5
    assert _status(world, dep_id) == ("CANCELLED", f"cancelled by {WHO}")
    assert _app_status(world, app_id) == "DONE", "back to what it was before"
    assert world.runtime.undone, "the release under way must be rolled back"
    assert world.runtime.services[next(iter(world.runtime.services))].image == good_image
    assert f"cancelled by {WHO}" in _log(world, dep_id)


def test_cancelling_a_first_release_removes_the_service_it_created(world: World) -> None:
    app_id = world.app()
    dep_id, runner = _start_hanging(world, app_id)
    control.cancel_application(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        application_id=app_id,
        who=WHO,
    )
    runner.join(timeout=5)
    assert _status(world, dep_id)[0] == "CANCELLED"
    assert world.runtime.services == {} and world.runtime.removed
    assert _app_status(world, app_id) == "IDLE"


def test_kill_ends_a_running_deployment_in_error(world: World) -> None:
    app_id = world.app()
    dep_id, runner = _start_hanging(world, app_id)
    row = control.kill(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        deployment_id=dep_id,
        who=WHO,
        grace=5,
    )
    runner.join(timeout=5)
    assert row.status == "ERROR" and row.error_message == f"killed by {WHO}"
    assert _app_status(world, app_id) == "ERROR"
    with pytest.raises(Conflict, match="not RUNNING"):
        control.kill(
            db=world.db,
            bus=world.bus,  # type: ignore[arg-type]
            deployment_id=dep_id,
            who=WHO,
            grace=1,
        )


def test_kill_of_an_unresponsive_worker_ends_the_row_itself(world: World) -> None:
    dep_id = world.submit(world.app()).deployment.id
    with world.db.session() as session:  # a row RUNNING on a worker that never answers
        dep = deployments.require(session, dep_id)
        dep.status, dep.worker, dep.pid = "RUNNING", "elsewhere:1", 1
        dep.started_at = dep.heartbeat_at = utcnow()
    row = control.kill(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        deployment_id=dep_id,
        who=WHO,
        grace=0.3,
    )
    assert row.status == "ERROR"
    assert row.error_message and "did not respond" in row.error_message


def test_a_deployment_past_its_time_limit_is_stopped_as_error(world: World) -> None:
    app_id = world.app(deploy_timeout=0.3)
    dep_id, runner = _start_hanging(world, app_id)
    runner.join(timeout=5)
    assert not runner.is_alive()
    status, error = _status(world, dep_id)
    assert status == "ERROR" and error and error.startswith("timed out")
    assert world.runtime.undone


def test_the_watchdog_ends_runs_whose_worker_ignores_their_limit(world: World) -> None:
    import os
    import socket

    app_id = world.app(deploy_timeout=60)
    dep_id = world.submit(app_id).deployment.id
    with world.db.session() as session:  # alive and beating, but two hours in
        dep = deployments.require(session, dep_id)
        dep.status, dep.pid = "RUNNING", os.getpid()
        dep.worker = f"{socket.gethostname()}:{os.getpid()}"
        dep.heartbeat_at, dep.started_at = utcnow(), utcnow() - timedelta(hours=2)
    reaped = reap_dead(
        db=world.db,
        bus=world.bus,  # type: ignore[arg-type]
        stale_after=60,
        default_timeout=1800,
    )
    assert reaped == [dep_id]
    assert (_status(world, dep_id)[1] or "").startswith("timed out after 60s")


def test_shutdown_ends_running_deployments_in_error(world: World) -> None:
    dep_id, runner = _start_hanging(world, world.app())
    world.engine.shutdown()
    runner.join(timeout=5)
    assert _status(world, dep_id) == ("ERROR", "the worker shut down")
    assert not world.engine.run(world.submit(world.app()).deployment.id)


def test_network_errors_of_a_fetch_are_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "RETRY_BASE_S", 0.01)
    world.git.network_failures = 2
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    assert _status(world, dep_id)[0] == "DONE" and len(world.git.clones) == 3
    assert "retrying" in _log(world, dep_id)


def test_fetch_retries_are_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "RETRY_BASE_S", 0.01)
    world.git.network_failures = 10
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    assert _status(world, dep_id)[0] == "ERROR"
    assert len(world.git.clones) == world.settings.fetch_retries + 1


def test_a_failed_build_is_not_retried(world: World) -> None:
    world.builder.fail = "RUN make: exit 2"
    dep_id = world.submit(world.app()).deployment.id
    world.engine.run(dep_id)
    assert _status(world, dep_id)[0] == "ERROR" and len(world.builder.builds) == 1


def test_a_build_server_runs_at_most_its_limit(world: World) -> None:
    with world.db.session() as session:
        server_id = servers.create(session, name="builder", max_concurrent_builds=2).id
    apps = [world.app(build_server_id=server_id) for _ in range(3)]
    world.runtime.hang = True
    ids = [world.submit(a).deployment.id for a in apps]
    runners = [threading.Thread(target=world.engine.run, args=(i,)) for i in ids[:2]]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 10
    while [_status(world, i)[0] for i in ids[:2]] != ["RUNNING", "RUNNING"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not world.engine.run(ids[2]), "a third must wait for a free slot"
    assert _status(world, ids[2])[0] == "QUEUED"
    world.engine.shutdown()
    for runner in runners:
        runner.join(timeout=5)


def test_simultaneous_claims_never_exceed_the_limit(world: World) -> None:
    """Ten workers claim ten applications' deployments at the same instant (limit 1)."""
    ids = [world.submit(world.app()).deployment.id for _ in range(10)]
    barrier = threading.Barrier(len(ids))
    won: list[str] = []

    def claim(dep_id: str) -> None:
        barrier.wait()
        with world.db.session(locking=True) as session:
            row = deployments.claim(
                session, deployment_id=dep_id, pid=1, worker="t:1", default_limit=1
            )
            if row is not None:
                won.append(row.id)

    threads = [threading.Thread(target=claim, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1
    with world.db.session() as session:
        assert len(deployments.running(session)) == 1


def test_retention_keeps_the_newest_and_removes_rows_logs_and_images(world: World) -> None:
    app_id = world.app()
    ids = []
    for _ in range(5):
        dep_id = world.submit(app_id, DeploymentTrigger.MANUAL).deployment.id
        assert world.engine.run(dep_id)
        ids.append(dep_id)
    with world.db.session() as session:
        paths = [Path(deployments.require(session, i).log_path) for i in ids]
    assert prune_application(world.db, app_id, keep=2) == 3
    with world.db.session() as session:
        assert deployments.existing_ids(session, ids) == set(ids[3:])
    assert [p.exists() for p in paths] == [False, False, False, True, True]
    removed = prune_images(world.db, world.runtime)
    assert sorted(removed) == sorted(f"slipway/{_app_name(world, app_id)}:{i}" for i in ids[:3])
    assert prune_application(world.db, app_id, keep=0) == 2  # clearDeployments


def _app_name(world: World, app_id: str) -> str:
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        return row.app_name
