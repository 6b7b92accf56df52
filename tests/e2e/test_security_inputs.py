"""Issue 9, findings 3 and 11, over real HTTP: a DEPLOY key cannot reach the host through
bind mounts, ADMIN keys never bind protected paths, a row holding a forbidden mount is
refused at deploy time, and over-long or deceptive text is BAD_USER_INPUT."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db.models import Application
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import DEPLOY
from tests.e2e.support_security import (
    CREATE,
    UPDATE,
    answers_quickly,
    counts,
    refused,
)

PROTECTED = "BAD_USER_INPUT"


def _bind(source: str, target: str = "/host", read_only: bool = False) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "readOnly": read_only}


def _attacks(server: Server, tmp_path: Path) -> list[str]:
    """Host paths that give the container the host, written in several ways."""
    (tmp_path / "to-root").symlink_to("/")
    (tmp_path / "to-data").symlink_to(server.settings.data_dir)
    paths = [
        "/",
        "//",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/proc",
        "/proc/self/root",
        "/sys",
        "/etc",
        "/var/lib/docker",
        "/srv/../",
        "/srv/www/../../etc",
        str(server.settings.data_dir),
        str(server.settings.data_dir / "secret.key"),
        str(server.settings.data_dir.parent),
        str(tmp_path / "to-root"),
        str(tmp_path / "to-data"),
        "relative/path",
    ]
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        paths.append(docker_host.removeprefix("unix://"))
    return paths


def test_a_deploy_key_cannot_bind_host_paths(fake_server: Server, tmp_path: Path) -> None:
    deploy = fake_server.client(Scope.DEPLOY)
    app = deploy(CREATE, input=GIT_APP())["createApplication"]
    before = counts(fake_server)
    started = time.monotonic()
    for source in _attacks(fake_server, tmp_path):
        for query, variables in (
            (CREATE, {"input": GIT_APP(mounts=[_bind(source)])}),
            (UPDATE, {"id": app["id"], "input": {"mounts": [_bind(source)]}}),
        ):
            error = refused(deploy, query, PROTECTED, **variables)
            assert "bind mount source" in error["message"], (source, error)
    shared = tmp_path / "shared"
    shared.mkdir()
    error = refused(deploy, CREATE, "FORBIDDEN", input=GIT_APP(mounts=[_bind(str(shared))]))
    assert "needs an ADMIN key" in error["message"]
    assert time.monotonic() - started < 30
    assert counts(fake_server) == before, "a refused mount wrote a row"
    with fake_server.db.session() as session:
        row = session.get(Application, app["id"])
        assert row is not None and row.mounts == []
    answers_quickly(fake_server)


def test_volumes_stay_deploy_and_carry_no_driver_options(fake_server: Server) -> None:
    deploy = fake_server.client(Scope.DEPLOY)
    volume = {"type": "volume", "source": "web-data", "target": "/data", "readOnly": False}
    app = deploy(CREATE, input=GIT_APP(mounts=[volume]))["createApplication"]
    assert app["mounts"] == [volume]
    before = counts(fake_server)
    # the local driver's o=bind,device=/ would bind the host: the API has no such field
    opts = {**volume, "driverOpts": {"type": "none", "o": "bind", "device": "/"}}
    body = deploy.raw(CREATE, input=GIT_APP(mounts=[opts]))
    assert body.get("errors") and not body.get("data"), body
    assert "driverOpts" in body["errors"][0]["message"]
    for mount in (
        {**volume, "type": "tmpfs"},
        {**volume, "type": "npipe"},
        {**volume, "source": "/"},
        {**volume, "source": "../etc"},
        {**volume, "target": "data"},
        {**volume, "target": "/"},
        {**volume, "target": "/data/../etc"},
    ):
        refused(deploy, CREATE, "BAD_USER_INPUT", input=GIT_APP(mounts=[mount]))
    assert counts(fake_server) == before
    answers_quickly(fake_server)


def test_an_admin_key_binds_an_ordinary_path_but_never_a_protected_one(
    fake_server: Server, tmp_path: Path
) -> None:
    admin = fake_server.client(Scope.ADMIN)
    deploy = fake_server.client(Scope.DEPLOY)
    shared = tmp_path / "shared"
    shared.mkdir()
    bind = _bind(str(shared), "/shared", read_only=True)
    app = admin(CREATE, input=GIT_APP(mounts=[bind]))["createApplication"]
    assert app["mounts"] == [bind]
    before = counts(fake_server)
    for source in _attacks(fake_server, tmp_path):
        refused(admin, CREATE, PROTECTED, input=GIT_APP(mounts=[_bind(source)]))
    assert counts(fake_server) == before
    # a DEPLOY key may keep the ADMIN's bind while it edits the volumes ...
    volume = {"type": "volume", "source": "cache", "target": "/cache", "readOnly": False}
    kept = deploy(UPDATE, id=app["id"], input={"mounts": [bind, volume]})["updateApplication"]
    assert kept["mounts"] == [bind, volume]
    # ... but not widen it: read-write, or another host path
    for changed in ({**bind, "readOnly": False}, {**bind, "source": str(tmp_path)}):
        refused(deploy, UPDATE, "FORBIDDEN", PROTECTED, id=app["id"], input={"mounts": [changed]})
    done = wait_finished(deploy, deploy(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    answers_quickly(fake_server)


@pytest.fixture
def prefixed_server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    (tmp_path / "apps" / "web").mkdir(parents=True)
    with running_server(
        tmp_path / "data", fakes.adapters, allowed_bind_prefixes=str(tmp_path / "apps")
    ) as server:
        yield server


def test_deploy_keys_bind_under_the_operators_prefixes_only(
    prefixed_server: Server, fakes: Fakes, tmp_path: Path
) -> None:
    apps = tmp_path / "apps"
    (apps / "root").symlink_to("/")
    (tmp_path / "apps-evil").mkdir()
    deploy = prefixed_server.client(Scope.DEPLOY)
    ok = _bind(str(apps / "web"), "/web")
    app = deploy(CREATE, input=GIT_APP(mounts=[ok]))["createApplication"]
    assert app["mounts"] == [ok]
    before = counts(prefixed_server)
    for source, code in (
        (str(apps / "root"), PROTECTED),
        (f"{apps}/../data", PROTECTED),
        (str(tmp_path / "apps-evil"), "FORBIDDEN"),
        (str(tmp_path), PROTECTED),  # the data dir's parent
    ):
        refused(deploy, CREATE, code, input=GIT_APP(mounts=[_bind(source)]))
    assert counts(prefixed_server) == before
    done = wait_finished(deploy, deploy(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert fakes.runtime.released[-1].mounts[0].source == str(apps / "web")


def _stored_app(server: Server, mounts: list[dict[str, Any]], **fields: Any) -> str:
    """An application row written straight into the database, bypassing the API."""
    with server.db.session() as session:
        row = Application(
            name="legacy",
            app_name=fields.pop("app_name", f"legacy-{os.urandom(3).hex()}"),
            source_type=fields.pop("source_type", "GIT"),
            repository="https://example.invalid/acme/web.git",
            mounts=mounts,
            **fields,
        )
        session.add(row)
        session.flush()
        return row.id


def test_a_stored_forbidden_mount_fails_at_deploy_time(
    fake_server: Server, fakes: Fakes, tmp_path: Path
) -> None:
    deploy = fake_server.client(Scope.DEPLOY)
    cases = {
        # even marked as an ADMIN's: a protected path is never deployed
        "/": [{"type": "bind", "source": "/", "target": "/host", "admin": True}],
        "gives the container the host": [
            {"type": "bind", "source": "/var/run/docker.sock", "target": "/s", "admin": True}
        ],
        # written before the rules by some key: not an ADMIN's, outside every prefix
        "not set by an ADMIN key": [
            {"type": "bind", "source": str(tmp_path / "home"), "target": "/home"}
        ],
    }
    for expected, mounts in cases.items():
        app_id = _stored_app(fake_server, mounts)
        done = wait_finished(deploy, deploy(DEPLOY, id=app_id)["deployApplication"]["id"])
        assert done["status"] == "ERROR"
        assert "refusing to deploy mount" in done["errorMessage"], done["errorMessage"]
        assert expected in done["errorMessage"]
        assert done["steps"] == [], "nothing was fetched, built or released"
    assert fakes.runtime.released == [] and fakes.builder.builds == []
    answers_quickly(fake_server)


def test_a_stored_forbidden_mount_creates_no_service_on_the_real_engine(
    real_server: Server, docker_client: Any, cleanup: list[str]
) -> None:
    deploy = real_server.client(Scope.DEPLOY)
    app_name = f"sec-mount-{os.urandom(3).hex()}"
    cleanup.append(app_name)
    mounts = [{"type": "bind", "source": "/var/run/docker.sock", "target": "/s", "admin": True}]
    app_id = _stored_app(
        real_server, mounts, app_name=app_name, source_type="DOCKER", docker_image="busybox:1.36"
    )
    done = wait_finished(deploy, deploy(DEPLOY, id=app_id)["deployApplication"]["id"])
    assert done["status"] == "ERROR"
    assert "refusing to deploy mount /s" in done["errorMessage"]
    assert "/var/run/docker.sock" in done["errorMessage"]
    assert docker_client.services.list(filters={"name": app_name}) == []
    answers_quickly(real_server)


LONG = "x" * 600


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("name", "a" * 101, "name must be at most 100"),
        ("name", "pay\u202egnp.exe", "bidirectional"),
        ("name", "web\u2066x", "bidirectional"),
        ("name", "bell\x07", "control characters"),
        ("env", [{"key": "K", "value": "v" * 40_000}], "env value of K must be at most 32768"),
        ("env", [{"key": "K" * 300, "value": "v"}], "env key must be at most 255"),
        ("buildArgs", [{"key": "A", "value": "v" * 40_000}], "buildArgs value of A"),
        ("command", ["sh"] * 101, "command takes at most 100"),
        ("command", ["x" * 5000], "command[0] must be at most 4096"),
        ("healthCheckCommand", ["CMD", "y" * 5000], "healthCheckCommand[1]"),
        ("watchPaths", [LONG], "watchPaths[0] must be at most 500"),
        ("previewDomain", "a" * 300 + ".com", "previewDomain must be at most 253"),
        ("branch", "b" * 300, "branch must be at most 255"),
        ("repository", "https://example.invalid/" + "r" * 3000, "repository must be at most"),
        ("dockerfile", "d" * 600, "dockerfile must be at most 500"),
        ("healthCheckPath", "/" + "p" * 600, "healthCheckPath must be at most 500"),
        ("mounts", [_bind("/srv/" + "m" * 5000)], "mount source must be at most 4096"),
        ("registryPassword", "p" * 20_000, "registryPassword must be at most 16384"),
        # what would overflow a VARCHAR on PostgreSQL (an internal error there)
        (
            "repository",
            "https://" + "u" * 300 + ":pw@example.invalid/r.git",
            "repository user name must be at most 200",
        ),
        ("dockerImage", "h" * 300 + ".example/x:1", "registry host must be at most 253"),
        ("buildServerId", "s" * 100, "buildServerId must be at most 24"),
    ],
)
def test_over_long_and_deceptive_fields_are_bad_input(
    fake_server: Server, field: str, value: Any, words: str
) -> None:
    deploy = fake_server.client(Scope.DEPLOY)
    before = counts(fake_server)
    error = refused(deploy, CREATE, "BAD_USER_INPUT", input=GIT_APP(**{field: value}))
    assert words in error["message"], error["message"]
    assert len(error["message"]) < 400, "the refused value is not echoed back"
    assert counts(fake_server) == before
    answers_quickly(fake_server)


def test_deployment_titles_descriptions_and_server_names_are_bounded(
    fake_server: Server,
) -> None:
    admin = fake_server.client(Scope.ADMIN)
    app_id = admin(CREATE, input=GIT_APP())["createApplication"]["id"]
    before = counts(fake_server)
    deploy_with = (
        "mutation($id: ID!, $t: String, $d: String) "
        "{ deployApplication(applicationId: $id, title: $t, description: $d) { id } }"
    )
    for title, description, words in (
        (LONG, None, "title must be at most 500"),
        ("fix \u202eevil", None, "bidirectional"),
        ("ok", "d" * 10_001, "description must be at most 10000"),
        ("ok", "nul\x00", "NUL"),
    ):
        error = refused(admin, deploy_with, "BAD_USER_INPUT", id=app_id, t=title, d=description)
        assert words in error["message"]
    deploy_branch = (
        "mutation($id: ID!, $b: String) { deployApplication(applicationId: $id, branch: $b) "
        "{ id } }"
    )
    error = refused(admin, deploy_branch, "BAD_USER_INPUT", id=app_id, b="b" * 300)
    assert "branch must be at most 255" in error["message"]
    # a 1 MB title is refused (by the body limit or by the field's), quickly, no row
    started = time.monotonic()
    res = admin.http.post(
        admin.url,
        json={"query": deploy_with, "variables": {"id": app_id, "t": "x" * 1_000_000}},
    )
    assert res.status_code in (400, 413) or res.json()["errors"], res.text[:300]
    assert time.monotonic() - started < 5
    assert counts(fake_server) == before
    create_server = "mutation($n: String!) { createServer(name: $n) { id } }"
    for name in ("srv\u202e", "s" * 101, "tab\tname"):
        refused(admin, create_server, "BAD_USER_INPUT", n=name)
    answers_quickly(fake_server)


def test_an_application_cannot_take_over_a_service_slipway_did_not_make(
    real_server: Server, docker_client: Any, cleanup: list[str]
) -> None:
    """appName is the Swarm service name: naming another service (a proxy, a database)
    must not replace it."""
    name = f"not-slipway-{os.urandom(3).hex()}"
    cleanup.append(name)
    docker_client.images.get("busybox:1.36").tag("slipway-test/local-only", "sec")
    try:
        _take_over(real_server, docker_client, name)
    finally:
        docker_client.images.remove("slipway-test/local-only:sec")


def _take_over(real_server: Server, docker_client: Any, name: str) -> None:
    other = docker_client.services.create("busybox:1.36", ["sleep", "3600"], name=name)
    deploy = real_server.client(Scope.DEPLOY)
    app = deploy(
        CREATE,
        input={
            "name": "taker",
            "appName": name,
            "sourceType": "DOCKER",
            "dockerImage": "slipway-test/local-only:sec",
        },
    )["createApplication"]
    done = wait_finished(deploy, deploy(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "ERROR"
    assert "was not made by Slipway" in done["errorMessage"], done["errorMessage"]
    other.reload()
    spec = other.attrs["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"].startswith("busybox:1.36")
    assert "slipway.managed" not in (spec.get("Labels") or {})
    answers_quickly(real_server)


def test_privileged_ports_need_an_admin_key(fake_server: Server) -> None:
    """A Swarm ingress port takes that port's traffic on every node (port 22: the hosts'
    ssh logins; Slipway's own port: every API key sent to it), so ports below 1024, the
    API's port and SLIPWAY_ADMIN_PORTS are ADMIN's to publish."""
    deploy = fake_server.client(Scope.DEPLOY)
    admin = fake_server.client(Scope.ADMIN)
    app = deploy(CREATE, input=GIT_APP())["createApplication"]
    before = counts(fake_server)
    for patch in (
        {"ports": [{"publishedPort": 22, "targetPort": 22}]},
        {"ports": [{"publishedPort": 80, "targetPort": 80, "publishMode": "HOST"}]},
        {"previewEnabled": True, "previewPortBase": 100},
        {"ports": [{"publishedPort": fake_server.settings.port, "targetPort": 80}]},  # the API's
        {"ports": [{"publishedPort": 2377, "targetPort": 80}]},  # Swarm's management port
        {"ports": [{"publishedPort": 5432, "targetPort": 5432, "publishMode": "HOST"}]},
    ):
        error = refused(deploy, CREATE, "FORBIDDEN", input=GIT_APP(**patch))
        assert "needs an ADMIN key" in error["message"]
        refused(deploy, UPDATE, "FORBIDDEN", id=app["id"], input=patch)
    assert counts(fake_server) == before
    high = {"ports": [{"publishedPort": 8080, "targetPort": 80}]}
    assert deploy(UPDATE, id=app["id"], input=high)["updateApplication"]["id"] == app["id"]
    low = GIT_APP(ports=[{"publishedPort": 80, "targetPort": 80}])
    assert admin(CREATE, input=low)["createApplication"]["id"]
    answers_quickly(fake_server)
