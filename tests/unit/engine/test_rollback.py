"""Rollback points and ROLLBACK deployments with fakes; release snapshots across versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.db.models import Application, Deployment, Registry
from app.db.repos import deployments, events
from app.engine import release_spec
from app.errors import BadInput, SourceError
from app.logs.files import read_after
from app.registry.fake_push import FakePusher
from app.types import DeploymentTrigger, PortSpec, ServiceSpec
from tests.unit.engine.conftest import World


def _run(
    world: World, app_id: str, trigger: DeploymentTrigger = DeploymentTrigger.MANUAL, **kw: Any
) -> str:
    dep_id = world.submit(app_id, trigger, **kw).deployment.id
    assert world.engine.run(dep_id)
    return dep_id


def _row(world: World, dep_id: str) -> Deployment:
    with world.db.session() as session:
        return deployments.require(session, dep_id)


def _app(world: World, app_id: str) -> Application:
    with world.db.session() as session:
        app = session.get(Application, app_id)
        assert app is not None
        return app


def _set(world: World, app_id: str, **cols: Any) -> None:
    with world.db.session() as session:
        app = session.get(Application, app_id)
        assert app is not None
        for key, value in cols.items():
            setattr(app, key, value)


def _log(row: Deployment) -> str:
    return "\n".join(line.message for line in read_after(Path(row.log_path), 0, 1000))


def test_a_done_deployment_keeps_its_image_and_an_encrypted_snapshot(world: World) -> None:
    app_id = world.app(ports=[{"published_port": 8081, "target_port": 8080}], replicas=2)
    v1 = _row(world, _run(world, app_id))
    name = _app(world, app_id).app_name
    assert v1.status == "DONE" and v1.rollback_image == f"slipway/{name}:{v1.id}"
    assert v1.release_spec_enc and "top-secret-value" not in v1.release_spec_enc
    released = release_spec.decode(world.cipher, v1.release_spec_enc)
    assert released.service.image == v1.rollback_image
    assert released.service.env == {"SECRET": "top-secret-value"}
    assert released.service.ports == (PortSpec(8081, 8080),) and released.service.replicas == 2
    assert "slipway.deployment" not in released.service.labels


def test_rollback_releases_the_old_image_and_snapshot_without_fetch_or_build(
    world: World,
) -> None:
    app_id = world.app()
    v1 = _run(world, app_id)
    _set(world, app_id, env_enc=world.cipher.encrypt_json({"SECRET": "second-secret-value"}))
    v2 = _run(world, app_id)
    clones, builds = len(world.git.clones), len(world.builder.builds)
    back = _run(world, app_id, DeploymentTrigger.ROLLBACK, rollback_of=v1)
    row = _row(world, back)
    assert row.status == "DONE", row.error_message
    assert row.trigger == "ROLLBACK" and row.rollback_of_id == v1
    assert (len(world.git.clones), len(world.builder.builds)) == (clones, builds)
    name = _app(world, app_id).app_name
    released = world.runtime.released[-1]
    assert released.image == f"slipway/{name}:{v1}" == row.image_ref
    assert released.env == {"SECRET": "top-secret-value"}, "the snapshot's env, not today's"
    assert released.labels["slipway.deployment"] == back
    with world.db.session() as session:
        steps = [e.step for e in events.for_deployments(session, [back])[back]]
    assert steps == ["ROLLBACK_POINT", "RELEASE", "VERIFY_HEALTH"]
    assert f"rolling back to deployment {v1} of {name}, image slipway/{name}:{v1}" in _log(row)
    assert "top-secret-value" not in _log(row)
    # the rollback is itself a rollback point (of the same image), and v2 can be gone back to
    assert row.rollback_image == f"slipway/{name}:{v1}"
    again = _row(world, _run(world, app_id, DeploymentTrigger.ROLLBACK, rollback_of=v2))
    assert again.status == "DONE" and world.runtime.released[-1].image.endswith(f":{v2}")
    assert world.runtime.released[-1].env == {"SECRET": "second-secret-value"}


@pytest.mark.parametrize("case", ["error", "running", "queued", "unknown", "other", "off"])
def test_what_cannot_be_rolled_back_is_bad_input_saying_why(world: World, case: str) -> None:
    app_id = world.app()
    target = _run(world, app_id)
    expected = "only a DONE deployment"
    if case == "error":
        world.runtime.verify_error = "unhealthy"
        target = _run(world, world.app())
        target_app = _row(world, target).application_id
        app_id = target_app
    elif case in ("running", "queued"):
        target = world.submit(app_id, DeploymentTrigger.REBUILD).deployment.id
        if case == "running":
            with world.db.session() as session:
                deployments.require(session, target).status = "RUNNING"
            expected = "is still running"
        else:
            expected = r"is QUEUED \(it has not run yet\)"
    elif case == "unknown":
        target, expected = "0" * 24, "does not exist"
    elif case == "other":
        app_id, expected = world.app(), "belongs to another application"
    else:
        _set(world, app_id, rollback_active=False)
        expected = "rollbackActive is off"
    with pytest.raises(BadInput, match=expected):
        world.submit(app_id, DeploymentTrigger.ROLLBACK, rollback_of=target)
    assert _app(world, app_id).rollback_pinned_id is None, "nothing half-written"


def test_rollback_active_off_keeps_no_rollback_point(world: World) -> None:
    app_id = world.app(rollback_active=False)
    row = _row(world, _run(world, app_id))
    assert row.status == "DONE" and row.rollback_image is None
    assert row.release_spec_enc, "what was released is still recorded (restore reads it)"
    _set(world, app_id, rollback_active=True)
    with pytest.raises(BadInput, match="has no rollback point left"):
        world.submit(app_id, DeploymentTrigger.ROLLBACK, rollback_of=row.id)


def test_a_rollback_point_whose_image_is_gone_fails_and_is_forgotten(world: World) -> None:
    app_id = world.app()
    v1 = _run(world, app_id)
    _run(world, app_id)
    world.runtime.images.pop(f"slipway/{_app(world, app_id).app_name}:{v1}")
    back = _row(world, _run(world, app_id, DeploymentTrigger.ROLLBACK, rollback_of=v1))
    assert back.status == "ERROR" and back.error_message
    assert "is gone from the engine" in back.error_message
    assert _row(world, v1).rollback_image is None, "canRollback is false from now on"


def test_a_rollback_pins_webhooks_until_a_manual_deploy(world: World) -> None:
    app_id = world.app()
    v1 = _run(world, app_id)
    _run(world, app_id)
    back = world.submit(app_id, DeploymentTrigger.ROLLBACK, rollback_of=v1).deployment.id
    assert _app(world, app_id).rollback_pinned_id == back
    world.engine.run(back)
    world.submit(app_id, DeploymentTrigger.PUSH)
    assert _app(world, app_id).rollback_pinned_id == back, "a push does not unpin"
    world.submit(app_id, DeploymentTrigger.REBUILD)
    assert _app(world, app_id).rollback_pinned_id is None


def test_restore_verifies_the_previous_version_with_its_own_health_path(world: World) -> None:
    app_id = world.app(health_check_path="/old")
    _run(world, app_id)
    _set(world, app_id, health_check_path="/new")
    world.runtime.verify_error = "HTTP 500"
    _run(world, app_id)
    assert world.runtime.restored[-1][2] == "/old"


def test_a_rollback_registry_gets_a_copy_under_its_own_tag(world: World) -> None:
    pusher = FakePusher()
    world.engine.adapters.pusher = pusher
    with world.db.session() as session:
        registry = Registry(name="backup", url="127.0.0.1:5001", host="127.0.0.1:5001")
        session.add(registry)
        session.flush()
        registry_id = registry.id
    app_id = world.app(rollback_registry_id=registry_id)
    row = _row(world, _run(world, app_id))
    name = _app(world, app_id).app_name
    assert pusher.pushes[-1][:2] == (
        f"slipway/{name}:{row.id}",
        f"127.0.0.1:5001/{name}:rollback-{row.id}",
    )
    assert row.rollback_registry_id == registry_id
    assert row.rollback_registry_ref is not None
    assert row.rollback_registry_ref.startswith(f"127.0.0.1:5001/{name}:rollback-{row.id}@sha256:")
    # the image gone locally: the rollback releases the copy from the registry
    world.runtime.images.clear()
    _run(world, app_id)
    back = _row(world, _run(world, app_id, DeploymentTrigger.ROLLBACK, rollback_of=row.id))
    assert back.status == "DONE", back.error_message
    assert world.runtime.released[-1].image == row.rollback_registry_ref
    assert back.rollback_registry_ref == row.rollback_registry_ref
    assert len(pusher.pushes) == 2, "a rollback pushes no second copy"


def test_snapshots_round_trip_and_an_older_minimal_one_still_loads() -> None:
    spec = ServiceSpec(name="web", image="slipway/web:1", env={"A": "b"}, command=("x", "y"))
    back = release_spec.load(release_spec.dump(spec, health_timeout=30.0))
    assert back.service == spec.__class__(**{**_fields(spec), "name": ""})
    assert back.health_timeout == 30.0
    # an early writer's document: only the version and the image; unknown keys ignored
    old = release_spec.load({"version": 1, "image": "slipway/web:0", "gone_field": 1})
    assert old.service.image == "slipway/web:0" and old.service.replicas == 1
    assert old.service.env == {} and old.service.ports == () and old.health_timeout is None


def test_snapshots_from_a_newer_slipway_or_broken_ones_are_refused() -> None:
    with pytest.raises(SourceError, match="written by a newer Slipway"):
        release_spec.load({"version": release_spec.VERSION + 1, "image": "x"})
    with pytest.raises(SourceError, match="not a release snapshot"):
        release_spec.load(["no"])
    with pytest.raises(SourceError, match="cannot be read"):
        release_spec.load({"version": 1, "image": "x", "ports": [{"published_port": "z"}]})


def test_older_versions_are_upgraded_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade chain: a version-1 document read by a Slipway writing version 2."""
    monkeypatch.setattr(release_spec, "VERSION", 2)
    monkeypatch.setitem(
        release_spec.UPGRADES, 1, lambda d: {**d, "version": 2, "replicas": d["scale"]}
    )
    loaded = release_spec.load({"version": 1, "image": "x", "scale": 3})
    assert loaded.service.replicas == 3 and loaded.version == 1


def _fields(spec: ServiceSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in spec.__dataclass_fields__}
