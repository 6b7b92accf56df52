"""Preview applications: derived from the parent, limited, removed after the PR closes."""

from __future__ import annotations

from pathlib import Path

from app.db.models import Application
from app.db.repos import deployments
from app.engine.previews import (
    close_preview,
    open_preview,
    preview_app_name,
    sweep_closed,
)
from app.queue.submit import SourceOverride
from app.types import DeploymentTrigger
from tests.unit.engine.conftest import World

PR = DeploymentTrigger.PULL_REQUEST


def _parent(world: World, **fields: object) -> str:
    return world.app(
        preview_enabled=True,
        preview_limit=2,
        preview_port_base=20000,
        preview_domain="preview.example.com",
        preview_env_enc=world.cipher.encrypt_json({"MODE": "preview"}),
        ports=[{"published_port": 8080, "target_port": 80, "publish_mode": "HOST"}],
        mounts=[
            {"type": "volume", "source": "data", "target": "/data", "read_only": False},
            # set by an ADMIN key ("admin"): a bind without the mark is refused at deploy
            {
                "type": "bind",
                "source": "/srv/static",
                "target": "/static",
                "read_only": True,
                "admin": True,
            },
        ],
        replicas=3,
        **fields,
    )


def _row(world: World, app_id: str) -> Application:
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        session.expunge(row)
        return row


def _open(world: World, parent: str, number: int) -> Application | None:
    return open_preview(
        world.db, world.cipher, parent_id=parent, number=number, head_ref="feature", title="Fix"
    )


def test_a_preview_is_derived_from_its_parent_with_its_own_name_port_env_and_volume(
    world: World,
) -> None:
    parent_id = _parent(world)
    parent = _row(world, parent_id)
    preview = _open(world, parent_id, 7)
    assert preview is not None
    assert preview.app_name == f"{parent.app_name}-pr-7"
    assert preview.parent_id == parent_id and preview.preview_number == 7
    assert preview.branch == "feature" and preview.repository == parent.repository
    assert preview.ports == [{"published_port": 20007, "target_port": 80, "publish_mode": "HOST"}]
    assert preview.mounts[0]["source"] == "data-pr-7", "a preview never writes the parent's volume"
    assert preview.mounts[1] == parent.mounts[1]
    assert preview.replicas == 1 and not preview.preview_enabled and not preview.auto_deploy
    env = world.cipher.decrypt_json(preview.env_enc)
    assert env == {"MODE": "preview"}, "the parent's env only where previewInheritEnv asks"
    assert preview.preview_domain == f"pr-7-{parent.app_name}.preview.example.com"


def test_the_preview_service_carries_its_host_labels(world: World) -> None:
    parent_id = _parent(world)
    preview = _open(world, parent_id, 3)
    assert preview is not None
    dep = world.submit(
        preview.id, PR, source=SourceOverride(sha="a" * 40, ref="feature")
    ).deployment
    assert world.engine.run(dep.id)
    spec = world.runtime.services[preview.app_name]
    assert spec.labels["slipway.domain"] == preview.preview_domain
    assert spec.labels[f"traefik.http.routers.{preview.app_name}.rule"] == (
        f"Host(`{preview.preview_domain}`)"
    )
    assert spec.labels["slipway.preview.number"] == "3"
    assert spec.ports[0].published_port == 20003
    spec_fetched = world.git.clones[-1][0]
    assert spec_fetched.commit_sha == "a" * 40 and spec_fetched.branch == "feature"


def test_the_limit_per_parent_holds_and_an_update_reuses_the_preview(world: World) -> None:
    parent_id = _parent(world)
    first = _open(world, parent_id, 1)
    assert first is not None
    assert _open(world, parent_id, 2) is not None
    assert _open(world, parent_id, 3) is None, "the limit of 2 is reached"
    again = _open(world, parent_id, 1)
    assert again is not None and again.id == first.id, "an update reuses the open preview"


def test_previews_are_off_unless_enabled(world: World) -> None:
    parent_id = world.app()
    assert _open(world, parent_id, 1) is None


def test_closing_removes_service_rows_logs_and_images(world: World, tmp_path: Path) -> None:
    parent_id = _parent(world)
    preview = _open(world, parent_id, 5)
    assert preview is not None
    dep = world.submit(preview.id, PR).deployment
    assert world.engine.run(dep.id)
    assert preview.app_name in world.runtime.services
    assert world.runtime.images, "the preview built an image"
    assert Path(dep.log_path).exists()

    assert close_preview(world.db, parent_id=parent_id, number=5) == preview.id
    assert sweep_closed(world.db, None, world.bus) == 0, "without a runtime nothing is removed"
    assert preview.app_name in world.runtime.services

    assert sweep_closed(world.db, world.runtime, world.bus, work_dir=world.settings.work_dir) == 1
    assert preview.app_name not in world.runtime.services
    assert world.runtime.images == {}, "its images are pruned"
    assert not Path(dep.log_path).exists()
    with world.db.session() as session:
        assert session.get(Application, preview.id) is None
        assert session.get(Application, parent_id) is not None
    assert close_preview(world.db, parent_id=parent_id, number=5) is None


def test_a_closed_preview_still_running_is_cancelled_first(world: World) -> None:
    parent_id = _parent(world)
    preview = _open(world, parent_id, 9)
    assert preview is not None
    dep = world.submit(preview.id, PR).deployment
    close_preview(world.db, parent_id=parent_id, number=9)
    assert sweep_closed(world.db, world.runtime, world.bus) == 0, "busy: cancelled, kept"
    with world.db.session() as session:
        assert deployments.require(session, dep.id).status == "CANCELLED"
    assert sweep_closed(world.db, world.runtime, world.bus) == 1


def test_preview_names_stay_valid_service_names() -> None:
    name = preview_app_name("a" * 63, 12345)
    assert len(name) <= 63 and name.endswith("-pr-12345")


def test_a_same_repository_preview_inherits_the_parents_env_only_when_asked(
    world: World,
) -> None:
    parent_id = _parent(world, preview_inherit_env=True)
    preview = _open(world, parent_id, 7)
    assert preview is not None
    env = world.cipher.decrypt_json(preview.env_enc)
    assert env == {"SECRET": "top-secret-value", "MODE": "preview"}, "previewEnv wins"


_SECRETS = {
    "repository_username": "deploy-bot",
    "repository_password_enc": "git-token",
    "ssh_key_enc": "ssh-private-key",
    "registry_username": "puller",
    "registry_password_enc": "registry-password",
    "build_secrets_enc": {"npm_token": "build-secret-value"},
}


def _parent_with_secrets(world: World, **fields: object) -> str:
    encrypted = {
        k: world.cipher.encrypt_json(v) if k.endswith("_enc") else v for k, v in _SECRETS.items()
    }
    return _parent(
        world,
        preview_inherit_env=True,
        build_args={"NPM_TOKEN": "npm-secret"},
        build_secret_keys=["npm_token"],
        **encrypted,
        **fields,
    )


def test_a_forks_preview_is_not_made_unless_the_parent_allows_forks(world: World) -> None:
    parent_id = _parent_with_secrets(world)
    made = open_preview(
        world.db, world.cipher, parent_id=parent_id, number=4, head_ref="f", title="x", fork=True
    )
    assert made is None
    with world.db.session() as session:
        assert session.query(Application).filter_by(parent_id=parent_id).count() == 0


def test_a_forks_preview_gets_preview_env_only_and_none_of_the_parents_secrets(
    world: World,
) -> None:
    parent_id = _parent_with_secrets(world, preview_allow_forks=True)
    parent = _row(world, parent_id)
    preview = open_preview(
        world.db, world.cipher, parent_id=parent_id, number=4, head_ref="f", title="x", fork=True
    )
    assert preview is not None
    assert world.cipher.decrypt_json(preview.env_enc) == {"MODE": "preview"}
    assert preview.env_keys == ["MODE"]
    for column in _SECRETS:
        assert getattr(preview, column) is None, column
    assert preview.build_args == {} and preview.build_secret_keys == []
    assert preview.mounts == [
        {"type": "volume", "source": "data-pr-4", "target": "/data", "read_only": False}
    ], "no bind mount of the host; the named volume is the preview's own"
    assert preview.repository == parent.repository and preview.known_hosts == parent.known_hosts

    dep = world.submit(preview.id, PR, source=SourceOverride(sha="a" * 40, ref="f")).deployment
    assert world.engine.run(dep.id)
    fetched = world.git.clones[-1][0]
    assert (fetched.password, fetched.ssh_key, fetched.username) == (None, None, None)
    spec = world.runtime.services[preview.app_name]
    assert "top-secret-value" not in repr(spec) and "npm-secret" not in repr(spec)
    assert world.builder.builds[-1].secrets == {}, "a fork's build gets no build secret"


def test_a_same_repository_update_after_a_fork_gets_the_parents_settings_back(
    world: World,
) -> None:
    """Each pull request event recomputes the preview, so the columns always match the
    latest event's origin."""
    parent_id = _parent_with_secrets(world, preview_allow_forks=True)
    kw = {"parent_id": parent_id, "number": 4, "head_ref": "f", "title": "x"}
    first = open_preview(world.db, world.cipher, fork=True, **kw)  # type: ignore[arg-type]
    again = open_preview(world.db, world.cipher, fork=False, **kw)  # type: ignore[arg-type]
    assert first is not None and again is not None and again.id == first.id
    assert again.ssh_key_enc is not None and len(again.mounts) == 2
    assert again.build_secret_keys == ["npm_token"] and again.build_secrets_enc is not None
    assert world.cipher.decrypt_json(again.env_enc)["SECRET"] == "top-secret-value"
