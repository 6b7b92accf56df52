"""Automatic restore with fakes: a failed VERIFY_HEALTH of an update puts the previous back."""

from __future__ import annotations

from pathlib import Path

from app.db.models import Application
from app.db.repos import deployments, events
from app.logs.files import read_after
from tests.unit.engine.conftest import World


def _deploy(world: World, app_id: str) -> str:
    dep_id = world.submit(app_id).deployment.id
    assert world.engine.run(dep_id)
    return dep_id


def _ended(world: World, dep_id: str) -> tuple[str, str | None, list[tuple[str, str]], str]:
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        steps = [(e.step, e.outcome) for e in events.for_deployments(session, [dep_id])[dep_id]]
        app = session.get(Application, dep.application_id)
        assert app is not None
        log = "\n".join(line.message for line in read_after(Path(dep.log_path), 0, 1000))
        return dep.status, dep.error_message, steps, log + f"\napp:{app.status}"


def _name(world: World, app_id: str) -> str:
    with world.db.session() as session:
        app = session.get(Application, app_id)
        assert app is not None
        return app.app_name


def test_a_failed_update_restores_the_previous_release_then_ends_error(world: World) -> None:
    app_id = world.app(health_check_path="/health")
    first = _deploy(world, app_id)
    name = _name(world, app_id)
    good_image = world.runtime.services[name].image
    world.runtime.verify_error = "service web did not become healthy within 5s: HTTP 500"
    second = _deploy(world, app_id)
    status, error, steps, log = _ended(world, second)
    assert status == "ERROR"
    assert steps[-2:] == [("VERIFY_HEALTH", "ERROR"), ("RESTORE", "DONE")]
    assert world.runtime.services[name].image == good_image == f"slipway/{name}:{first}"
    assert world.runtime.restored == [(name, good_image, "/health")]
    assert error is not None
    assert error.startswith("the new version failed: service web did not become healthy")
    assert f"the previous version ({good_image}) was restored and answers again" in error
    assert "restoring the previous release (image" in log
    assert f"Restored {name} to {good_image}" in log
    assert log.endswith("app:ERROR")


def test_restoring_that_fails_too_says_so(world: World) -> None:
    app_id = world.app()
    _deploy(world, app_id)
    world.runtime.verify_error = "service web keeps failing: 3 tasks ended"
    world.runtime.restore_error = "service web did not become healthy within 5s: port 8080"
    status, error, steps, log = _ended(world, _deploy(world, app_id))
    assert status == "ERROR" and steps[-1] == ("RESTORE", "ERROR")
    assert error is not None and "keeps failing" in error
    assert "restoring the previous version failed too: service web did not become" in error
    assert "Restoring the previous version failed too" in log


def test_restore_on_failure_off_leaves_the_failed_release(world: World) -> None:
    app_id = world.app(restore_on_failure=False)
    _deploy(world, app_id)
    world.runtime.verify_error = "service web did not become healthy within 5s"
    second = _deploy(world, app_id)
    status, error, steps, log = _ended(world, second)
    assert status == "ERROR" and error == "service web did not become healthy within 5s"
    assert [s for s, _ in steps][-1] == "VERIFY_HEALTH"
    assert world.runtime.restored == [] and world.runtime.undone == []
    assert world.runtime.services[_name(world, app_id)].image.endswith(f":{second}")
    assert "restoreOnFailure is off: the failed release" in log


def test_a_first_deployment_has_nothing_to_restore(world: World) -> None:
    world.runtime.verify_error = "service web did not become healthy within 5s"
    app_id = world.app()
    status, error, steps, log = _ended(world, _deploy(world, app_id))
    assert status == "ERROR" and error == "service web did not become healthy within 5s"
    assert [s for s, _ in steps][-1] == "VERIFY_HEALTH"
    assert world.runtime.restored == [] and world.runtime.removed == []
    assert _name(world, app_id) in world.runtime.services, "left as it is, as before"
    assert "Nothing to restore: this deployment created service" in log


def test_a_failed_release_is_not_a_failed_verification(world: World) -> None:
    app_id = world.app()
    _deploy(world, app_id)
    world.runtime.release_error = "Docker refused to update service web"
    status, error, steps, _ = _ended(world, _deploy(world, app_id))
    assert status == "ERROR" and error == "Docker refused to update service web"
    assert steps[-1] == ("RELEASE", "ERROR") and world.runtime.restored == []
