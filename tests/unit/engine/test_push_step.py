"""PUSH_IMAGE in the pipeline, with fakes: when it runs, what it records, what RELEASE then
releases, its retries, refusals and cancel. The real pusher is proven against real
registries in tests/integration/registry/ and tests/e2e/test_push_real.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.db.models import Application, Registry
from app.db.repos import deployments, events
from app.engine import steps
from app.engine.pipeline import steps_for
from app.registry.fake_push import FakePusher
from app.types import DeploymentTrigger, SourceType, Step
from tests.unit.engine.conftest import World

PASSWORD = "registry-pa55word"


@pytest.fixture
def pusher(world: World) -> FakePusher:
    pusher = FakePusher()
    world.engine.adapters.pusher = pusher
    return pusher


def _registry(world: World, *, username: str | None = "deployer") -> str:
    with world.db.session() as session:
        row = Registry(
            name="main",
            url="registry.example.com",
            host="registry.example.com",
            username=username,
            password_enc=world.cipher.encrypt_json(PASSWORD) if username else None,
            image_prefix="team",
        )
        session.add(row)
        session.flush()
        return row.id


def _run(world: World, app_id: str) -> str:
    dep_id = world.submit(app_id).deployment.id
    world.engine.run(dep_id)
    return dep_id


def _row(world: World, dep_id: str) -> tuple[str, str | None, str | None, str | None]:
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        return dep.status, dep.error_message, dep.image_ref, dep.registry_id


def _steps(world: World, dep_id: str) -> list[tuple[str, str | None]]:
    with world.db.session() as session:
        rows = events.for_deployments(session, [dep_id])[dep_id]
        return [(e.step, e.outcome) for e in rows]


def _log(world: World, dep_id: str) -> str:
    with world.db.session() as session:
        return Path(deployments.require(session, dep_id).log_path).read_text()


def test_push_image_follows_build_image_only_with_a_registry() -> None:
    def names(source: SourceType, push: bool) -> list[Step]:
        return [s.step for s in steps_for(source, push=push)]

    git = [Step.FETCH_SOURCE, Step.BUILD_IMAGE, Step.RELEASE, Step.VERIFY_HEALTH]
    pushed = [
        Step.FETCH_SOURCE,
        Step.BUILD_IMAGE,
        Step.PUSH_IMAGE,
        Step.RELEASE,
        Step.VERIFY_HEALTH,
    ]
    assert names(SourceType.GITHUB, False) == git
    assert names(SourceType.GITHUB, True) == pushed
    assert names(SourceType.DROP, True) == pushed
    image = [Step.FETCH_SOURCE, Step.RELEASE, Step.VERIFY_HEALTH]
    assert names(SourceType.DOCKER, True) == names(SourceType.DOCKER, False) == image


def test_a_pushed_image_is_released_by_digest_with_the_registrys_auth(
    world: World, pusher: FakePusher
) -> None:
    registry_id = _registry(world)
    app_id = world.app(registry_id=registry_id)
    dep_id = _run(world, app_id)
    status, error, image_ref, recorded = _row(world, dep_id)
    assert (status, error) == ("DONE", None)
    assert [s for s, _ in _steps(world, dep_id)] == [
        "FETCH_SOURCE",
        "BUILD_IMAGE",
        "PUSH_IMAGE",
        "RELEASE",
        "VERIFY_HEALTH",
    ]
    app_name = world.runtime.released[0].name
    repository = f"registry.example.com/team/{app_name}"
    [(image, ref, auth)] = pusher.pushes
    assert (image, ref) == (f"slipway/{app_name}:{dep_id}", f"{repository}:{dep_id}")
    assert auth is not None and (auth.username, auth.password) == ("deployer", PASSWORD)
    assert image_ref is not None and image_ref.startswith(f"{repository}@sha256:")
    assert recorded == registry_id
    released = world.runtime.released[-1]
    assert released.image == image_ref
    assert released.registry_auth == auth
    log = _log(world, dep_id)
    assert f"to {repository}:{dep_id} (registry 'main', user deployer)" in log
    assert f"Releasing {image_ref}" in log
    assert PASSWORD not in log


def test_without_a_registry_nothing_is_pushed(world: World, pusher: FakePusher) -> None:
    dep_id = _run(world, world.app())
    status, _, image_ref, registry_id = _row(world, dep_id)
    assert status == "DONE" and pusher.pushes == [] and registry_id is None
    assert image_ref is not None and image_ref.startswith("slipway/")
    assert "PUSH_IMAGE" not in [s for s, _ in _steps(world, dep_id)]


def test_an_image_source_is_released_as_pulled(world: World, pusher: FakePusher) -> None:
    app_id = world.app(registry_id=_registry(world))
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        row.source_type, row.docker_image, row.repository = "DOCKER", "nginx:1", None
    dep_id = _run(world, app_id)
    status, _, image_ref, registry_id = _row(world, dep_id)
    assert status == "DONE" and pusher.pushes == [] and registry_id is None
    assert image_ref is not None and image_ref.startswith("nginx@sha256:")
    assert "is not pushed to: image sources run as pulled" in _log(world, dep_id)


def test_a_registry_without_credentials_releases_with_none_of_its_own(
    world: World, pusher: FakePusher
) -> None:
    dep_id = _run(world, world.app(registry_id=_registry(world, username=None)))
    assert _row(world, dep_id)[0] == "DONE"
    assert pusher.pushes[0][2] is None
    assert world.runtime.released[-1].registry_auth is None


def test_network_errors_of_a_push_are_retried_like_a_fetch(
    world: World, pusher: FakePusher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "RETRY_BASE_S", 0.01)
    pusher.network_failures = 2
    dep_id = _run(world, world.app(registry_id=_registry(world)))
    assert _row(world, dep_id)[0] == "DONE" and len(pusher.pushes) == 3
    log = _log(world, dep_id)
    assert "connection refused; network error, retrying in 0.01s (1/3)" in log
    assert "retrying in 0.02s (2/3)" in log


def test_push_retries_are_bounded(
    world: World, pusher: FakePusher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "RETRY_BASE_S", 0.01)
    pusher.network_failures = 10
    dep_id = _run(world, world.app(registry_id=_registry(world)))
    status, error, _, registry_id = _row(world, dep_id)
    assert status == "ERROR" and error is not None and "cannot reach registry" in error
    assert len(pusher.pushes) == world.settings.fetch_retries + 1
    assert registry_id is None and world.runtime.released == []
    assert _steps(world, dep_id)[-1] == ("PUSH_IMAGE", "ERROR")


def test_refused_credentials_fail_at_once(world: World, pusher: FakePusher) -> None:
    pusher.auth_error = f"registry 'main' refused the credentials ({PASSWORD})"
    dep_id = _run(world, world.app(registry_id=_registry(world)))
    status, error, _, _ = _row(world, dep_id)
    assert status == "ERROR" and len(pusher.pushes) == 1
    assert error is not None and "refused the credentials" in error
    assert PASSWORD not in error and PASSWORD not in _log(world, dep_id)
    assert "retrying" not in _log(world, dep_id) and world.runtime.released == []


def test_cancel_during_a_push_ends_cancelled_with_nothing_released(
    world: World, pusher: FakePusher
) -> None:
    pusher.block = True
    dep_id = world.submit(world.app(registry_id=_registry(world))).deployment.id
    runner = threading.Thread(target=world.engine.run, args=(dep_id,))
    runner.start()
    assert pusher.started.wait(10)
    with world.db.session() as session:
        deployments.require(session, dep_id).cancel_requested = True
    started = time.monotonic()
    runner.join(timeout=10)
    assert not runner.is_alive() and time.monotonic() - started < 5
    assert _row(world, dep_id)[0] == "CANCELLED"
    assert _steps(world, dep_id)[-1] == ("PUSH_IMAGE", "CANCELLED")
    assert world.runtime.released == []


def test_a_rebuild_pushes_again_under_its_own_tag(world: World, pusher: FakePusher) -> None:
    app_id = world.app(registry_id=_registry(world))
    first = _run(world, app_id)
    second = world.submit(app_id, DeploymentTrigger.REBUILD).deployment.id
    world.engine.run(second)
    refs = [ref for _, ref, _ in pusher.pushes]
    assert [r.rsplit(":", 1)[1] for r in refs] == [first, second]
    assert _row(world, first)[2] != _row(world, second)[2]
