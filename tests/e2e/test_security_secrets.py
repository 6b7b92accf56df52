"""Issue 9, findings 5 and 7, over real HTTP: registry credentials stay with the registry
host they were given for, and build argument values are write-only, encrypted at rest and
masked in logs, like env."""

from __future__ import annotations

import json
from pathlib import Path

from app.db.models import Application
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import DEPLOY
from tests.e2e.support_security import APP, CREATE, UPDATE, answers_quickly

HOME = "127.0.0.1:5000/acme/web:1"
PASSWORD = "registry-s3cret-pw"


def _image_app(server: Server) -> dict[str, object]:
    client = server.client(Scope.DEPLOY)
    return client(
        CREATE,
        input={
            "name": "img",
            "sourceType": "DOCKER",
            "dockerImage": HOME,
            "registryUsername": "deployer",
            "registryPassword": PASSWORD,
        },
    )["createApplication"]


def _stored(server: Server, app_id: object) -> Application:
    with server.db.session() as session:
        row = session.get(Application, str(app_id))
        assert row is not None
        session.expunge(row)
        return row


def test_moving_the_image_to_another_registry_clears_the_credentials(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app = _image_app(fake_server)
    assert _stored(fake_server, app["id"]).registry_host == "127.0.0.1:5000"
    same_host = client(UPDATE, id=app["id"], input={"dockerImage": "127.0.0.1:5000/acme/b:2"})
    assert same_host["updateApplication"]["hasRegistryPassword"] is True
    moved = client(UPDATE, id=app["id"], input={"dockerImage": "attacker.example:443/x/web:1"})
    shown = moved["updateApplication"]
    assert shown["registryUsername"] is None and shown["hasRegistryPassword"] is False
    row = _stored(fake_server, app["id"])
    assert (row.registry_username, row.registry_password_enc, row.registry_host) == (
        None,
        None,
        None,
    )
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert fakes.runtime.pulled[-1] == ("attacker.example:443/x/web:1", None)
    answers_quickly(fake_server)


def test_a_new_username_alone_does_not_carry_the_password_to_the_new_host(
    fake_server: Server,
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app = _image_app(fake_server)
    moved = client(
        UPDATE,
        id=app["id"],
        input={"dockerImage": "evil.example/acme/web:1", "registryUsername": "deployer"},
    )["updateApplication"]
    assert moved["hasRegistryPassword"] is False
    assert _stored(fake_server, app["id"]).registry_host == "evil.example"
    # new credentials given with the new image are bound to the new host
    rebound = client(
        UPDATE,
        id=app["id"],
        input={"dockerImage": "ghcr.io/acme/web:2", "registryPassword": "ghcr-token"},
    )["updateApplication"]
    assert rebound["hasRegistryPassword"] is True and rebound["registryUsername"] is None
    row = _stored(fake_server, app["id"])
    assert row.registry_host == "ghcr.io" and row.registry_password_enc


def test_the_pull_gets_the_credentials_for_their_own_host_only(
    fake_server: Server, fakes: Fakes
) -> None:
    """A row whose image moved without the API (written before 0004, or by hand): the
    snapshot carries the bound host, and the pull (app/runtime/images.py, tested with a
    recording engine in tests/unit/runtime/test_image_auth_binding.py) sends nothing."""
    client = fake_server.client(Scope.DEPLOY)
    app = _image_app(fake_server)
    with fake_server.db.session() as session:
        row = session.get(Application, str(app["id"]))
        assert row is not None
        row.docker_image = "attacker.example/x/web:1"
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    image, auth = fakes.runtime.pulled[-1]
    assert image == "attacker.example/x/web:1"
    assert auth is not None and auth.registry == "127.0.0.1:5000"


SECRET = "npm-t0ken-very-s3cret"


def test_build_args_are_write_only_encrypted_and_masked(fake_server: Server, fakes: Fakes) -> None:
    deploy = fake_server.client(Scope.DEPLOY)
    read = fake_server.client(Scope.READ)
    args = [{"key": "NPM_TOKEN", "value": SECRET}, {"key": "NODE_ENV", "value": "production"}]
    app = deploy(CREATE, input=GIT_APP(buildArgs=args))["createApplication"]
    assert app["buildArgKeys"] == ["NODE_ENV", "NPM_TOKEN"]
    assert app["buildArgs"] == {"NODE_ENV": None, "NPM_TOKEN": None}
    shown = read.http.post(
        read.url,
        json={"query": "{ applications { edges { node { buildArgs buildArgKeys envKeys } } } }"},
    ).text
    assert "NPM_TOKEN" in shown and SECRET not in shown and "production" not in shown
    assert SECRET not in json.dumps(read(APP, id=app["id"]))
    db = (fake_server.settings.data_dir / "slipway.db").read_bytes()
    assert SECRET.encode() not in db, "a build argument is in the database in clear"

    fakes.builder.fail = f"npm ERR! 401 for token {SECRET}"
    done = wait_finished(deploy, deploy(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "ERROR"
    assert fakes.builder.builds[-1].build_args == {"NPM_TOKEN": SECRET, "NODE_ENV": "production"}
    assert SECRET not in done["errorMessage"] and "********" in done["errorMessage"]
    assert SECRET not in Path(done["logPath"]).read_text()
    assert SECRET not in json.dumps(done["logs"])
    answers_quickly(fake_server)


def test_clear_build_args_of_an_older_row_are_sealed_on_first_deploy(
    fake_server: Server, fakes: Fakes
) -> None:
    """Rows written before migration 0004 hold clear values (the migration has no key):
    names only in responses at once; values moved into the encrypted column when the
    application is first deployed, and still passed to the build."""
    deploy = fake_server.client(Scope.DEPLOY)
    app_id = deploy(CREATE, input=GIT_APP())["createApplication"]["id"]
    with fake_server.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        row.build_args = {"LEGACY_TOKEN": SECRET}
    shown = deploy(APP, id=app_id)["application"]
    assert shown["buildArgKeys"] == ["LEGACY_TOKEN"] and SECRET not in json.dumps(shown)
    done = wait_finished(deploy, deploy(DEPLOY, id=app_id)["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert fakes.builder.builds[-1].build_args == {"LEGACY_TOKEN": SECRET}
    row = _stored(fake_server, app_id)
    assert row.build_args == {} and row.build_arg_keys == ["LEGACY_TOKEN"]
    assert row.build_args_enc and SECRET not in row.build_args_enc


def test_clear_build_args_are_sealed_when_the_server_starts(tmp_path: Path, fakes: Fakes) -> None:
    """An application never deployed nor edited after the upgrade is sealed too: the
    server encrypts every clear value at startup."""
    data = tmp_path / "data"
    with running_server(data, fakes.adapters) as server:
        app_id = server.client(Scope.DEPLOY)(CREATE, input=GIT_APP())["createApplication"]["id"]
    with server.db.session() as session:  # as an older version left it
        row = session.get(Application, app_id)
        assert row is not None
        row.build_args = {"OLD_TOKEN": SECRET}
    server.db.dispose()
    with running_server(data, fakes.adapters) as restarted:
        row = _stored(restarted, app_id)
        assert row.build_args == {} and row.build_arg_keys == ["OLD_TOKEN"]
        assert row.build_args_enc and SECRET not in row.build_args_enc
        shown = restarted.client(Scope.READ)(APP, id=app_id)["application"]
        assert shown["buildArgKeys"] == ["OLD_TOKEN"] and SECRET not in json.dumps(shown)
