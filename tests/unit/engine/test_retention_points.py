"""Retention removes pruned deployments' rollback points (images, registry tags by digest),
never what runs now nor what a kept deployment still names."""

from __future__ import annotations

from app.db.models import Application, Deployment, Registry
from app.db.repos import deployments
from app.engine.retention import PointRemover, by_digest, prune_application, prune_images
from app.registry.fake import FakeRegistryClient
from app.registry.fake_push import FakePusher
from app.types import DeploymentTrigger
from tests.unit.engine.conftest import World


def _run(
    world: World, app_id: str, trigger: DeploymentTrigger = DeploymentTrigger.MANUAL, **kw: object
) -> Deployment:
    dep_id = world.submit(app_id, trigger, **kw).deployment.id  # type: ignore[arg-type]
    assert world.engine.run(dep_id)
    with world.db.session() as session:
        return deployments.require(session, dep_id)


def _setup(world: World) -> tuple[str, FakeRegistryClient, PointRemover]:
    world.engine.adapters.pusher = FakePusher()
    with world.db.session() as session:
        row = Registry(name="backup", url="127.0.0.1:5001", host="127.0.0.1:5001")
        session.add(row)
        session.flush()
        registry_id = row.id
    app_id = world.app(rollback_registry_id=registry_id)
    client = FakeRegistryClient()
    return app_id, client, PointRemover(cipher=world.cipher, runtime=world.runtime, registry=client)


def _pushed(client: FakeRegistryClient, dep: Deployment) -> None:
    """Record the rollback copy in the fake registry, as the push made it."""
    assert dep.rollback_registry_ref is not None
    ref = by_digest(dep.rollback_registry_ref)
    repository, _, digest = ref.partition("@")
    client.manifests.setdefault(("127.0.0.1:5001", repository.split("/", 1)[1]), set()).add(digest)


def test_pruning_removes_the_image_and_registry_copy_of_what_is_pruned(world: World) -> None:
    app_id, client, points = _setup(world)
    rows = [_run(world, app_id) for _ in range(3)]
    for row in rows:
        _pushed(client, row)
    # keep the image of rows[0] out of any service: the fake treats released ones as used
    assert prune_application(world.db, app_id, keep=1, points=points) == 2
    gone = {d for _, _, d in client.deleted}
    assert gone == {by_digest(r.rollback_registry_ref or "").split("@")[1] for r in rows[:2]}
    assert set(world.runtime.removed_images) == {r.rollback_image for r in rows[:2]}
    assert rows[2].rollback_image in world.runtime.images, "what runs now stays"


def test_what_runs_now_is_never_pruned_even_behind_newer_errors(world: World) -> None:
    app_id, client, points = _setup(world)
    good = _run(world, app_id)
    _pushed(client, good)
    world.runtime.verify_error = "HTTP 500"
    for _ in range(2):
        assert _run(world, app_id).status == "ERROR"
    prune_application(world.db, app_id, keep=1, points=points)
    with world.db.session() as session:
        assert deployments.get(session, good.id) is not None, "the running version's row"
    assert client.deleted == [] and good.rollback_image in world.runtime.images
    # clearDeployments (keep=0) deletes the rows but not the running version's point
    prune_application(world.db, app_id, keep=0, points=points)
    assert client.deleted == [] and good.rollback_image in world.runtime.images


def test_an_image_a_kept_rollback_names_stays(world: World) -> None:
    app_id, client, points = _setup(world)
    v1 = _run(world, app_id)
    _pushed(client, v1)
    v2 = _run(world, app_id)
    _pushed(client, v2)
    back = _run(world, app_id, DeploymentTrigger.ROLLBACK, rollback_of=v1.id)
    assert back.status == "DONE" and back.rollback_image == v1.rollback_image
    with world.db.session() as session:  # prune v1 alone
        app = session.get(Application, app_id)
        assert app is not None
    prune_application(world.db, app_id, keep=2, points=points)
    with world.db.session() as session:
        assert deployments.get(session, v1.id) is None
    assert v1.rollback_image not in world.runtime.removed_images
    assert client.deleted == [], "the rollback's copy is v1's: kept"
    # image retention by label keeps it too: the rollback's row names it
    world.runtime.services.clear()
    assert v1.rollback_image not in prune_images(world.db, world.runtime)


def test_without_a_registry_client_tags_are_left_and_rows_still_pruned(world: World) -> None:
    app_id, client, _ = _setup(world)
    rows = [_run(world, app_id) for _ in range(2)]
    points = PointRemover(cipher=world.cipher)
    assert prune_application(world.db, app_id, keep=1, points=points) == 1
    assert client.deleted == [] and rows[0].rollback_image in world.runtime.images


def test_by_digest_drops_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    assert (
        by_digest(f"127.0.0.1:5001/x/web:rollback-1@{digest}") == f"127.0.0.1:5001/x/web@{digest}"
    )
    assert by_digest(f"127.0.0.1:5001/web@{digest}") == f"127.0.0.1:5001/web@{digest}"
