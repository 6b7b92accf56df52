"""The engine's snapshot is filled from the registry rows an application names: the
password decrypted for the engine only, and added to what the log masks."""

from __future__ import annotations

from app.db.models import Application, Deployment, Registry
from app.db.repos import registries
from app.engine.snapshot import snapshot
from tests.unit.engine.conftest import World


def test_the_claimed_snapshot_carries_both_registries(world: World) -> None:
    with world.db.session() as session:
        push = Registry(
            name="push",
            url="127.0.0.1:5001",
            host="127.0.0.1:5001",
            username="pusher",
            password_enc=world.cipher.encrypt_json("push-pw-1"),
            image_prefix="team",
        )
        keep = Registry(name="keep", url="https://reg.example.com", host="reg.example.com")
        session.add_all([push, keep])
        session.flush()
        push_id, keep_id = push.id, keep.id
    app_id = world.app(registry_id=push_id, rollback_registry_id=keep_id)
    dep_id = world.submit(app_id).deployment.id
    with world.db.session() as session:
        app = session.get(Application, app_id)
        dep = session.get(Deployment, dep_id)
        assert app is not None and dep is not None
        named = registries.by_ids(session, (app.registry_id, app.rollback_registry_id))
        snap = snapshot(app, dep, world.cipher, named)
    target, rollback = snap.app.registry, snap.app.rollback_registry
    assert target is not None and rollback is not None
    assert (target.id, target.host, target.secure) == (push_id, "127.0.0.1:5001", False)
    assert target.auth is not None and target.auth.password == "push-pw-1"
    assert target.repository(app.app_name) == f"127.0.0.1:5001/team/{app.app_name}"
    assert (rollback.id, rollback.auth, rollback.secure) == (keep_id, None, True)
    assert "push-pw-1" in snap.app.secrets  # masked in every log line
    assert "push-pw-1" not in repr(target)
