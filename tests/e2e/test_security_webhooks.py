"""Issue 9, findings 4, 8 and 9, over real HTTP to a real server.

* A signed pull request from a fork (each provider's way of saying so) is refused unless
  the application allows forks, and then it is built with ``previewEnv`` only: none of the
  parent's env, bind mounts, build arguments or credentials.
* A signed body replayed under a new delivery id is acknowledged and deploys nothing.
* ``file://`` repositories need ADMIN; with SLIPWAY_BLOCK_PRIVATE_SOURCES on, a repository on
  a loopback address is refused at fetch time, without naming what answered where.
"""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.builders.fake import FakeBuilder
from app.db.models import Application, Deployment, WebhookDelivery
from app.engine.context import Adapters
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.git import GitPythonClient
from app.types import BuildType, Scope
from tests.e2e.conftest import Fakes, wait_finished
from tests.e2e.harness import GraphQLError, Server, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.fixtures.webhooks.samples import (
    PROVIDERS,
    encode,
    pull_request,
    push,
    signed_headers,
)
from tests.support.git_remotes import history_repo, make_key, serve_git

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
SOURCE_TYPES = {"github": "GITHUB", "gitlab": "GITLAB", "gitea": "GITEA", "bitbucket": "BITBUCKET"}
PARENT_SECRET = "prod-db-password-6f1c0e"
REGENERATE = "mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }"
UPDATE = """
mutation($id: ID!, $input: UpdateApplicationInput!) {
  updateApplication(id: $id, input: $input) { id repository submodules }
}"""
FORK_SETTINGS = "query($id: ID!) { application(id: $id) { previewAllowForks previewInheritEnv } }"


def _deliver(
    server: Server, provider: str, app_id: str, secret: str, kind: str, payload: dict[str, Any]
) -> httpx.Response:
    body = encode(payload)
    headers = signed_headers(provider, kind, body, secret, delivery=str(uuid.uuid4()))
    url = f"http://127.0.0.1:{server.port}/webhooks/{provider}/{app_id}"
    return httpx.post(url, content=body, headers=headers, timeout=30)


def _healthy_fast(server: Server) -> None:
    started = time.monotonic()
    res = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    assert res.status_code == 200
    assert time.monotonic() - started < 0.5, "the server still answers at once"


def _rows(server: Server, model: type[Any], **where: Any) -> list[Any]:
    with server.db.session() as session:
        query = select(model).filter_by(**where)
        return list(session.scalars(query).all())


def _parent(server: Server, provider: str, **extra: Any) -> tuple[str, str]:
    """An application with previews on, a production secret in its env and a webhook secret."""
    client = server.client()
    app = client(
        CREATE_APP,
        input={
            "name": "web",
            "sourceType": SOURCE_TYPES[provider],
            "repository": f"https://example.invalid/acme/web-{uuid.uuid4().hex[:8]}.git",
            "branch": "main",
            "env": [{"key": "DATABASE_PASSWORD", "value": PARENT_SECRET}],
            "previewEnabled": True,
            "previewInheritEnv": True,  # same-repository previews would get it: forks never
            "previewEnv": [{"key": "MODE", "value": "preview"}],
            **extra,
        },
    )["createApplication"]
    return app["id"], client(REGENERATE, id=app["id"])["regenerateWebhookSecret"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_forged_fork_pull_request_is_refused_and_deploys_nothing(
    fake_server: Server, fakes: Fakes, provider: str
) -> None:
    server = fake_server
    app_id, secret = _parent(server, provider)
    payload = pull_request(provider, "pr_open", number=7, head_ref="evil", sha=SHA, fork=True)
    res = _deliver(server, provider, app_id, secret, "pr_open", payload)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["outcome"] == "ignored" and body["deploymentId"] is None
    assert "fork" in body["reason"] and "previewAllowForks" in body["reason"]
    assert _rows(server, Deployment) == [], "no deployment row at all"
    assert _rows(server, Application, parent_id=app_id) == [], "no preview application"
    assert fakes.git.clones == [] and fakes.runtime.services == {}
    _healthy_fast(server)
    # the same repository's own pull request still builds (the refusal is about forks)
    own = pull_request(provider, "pr_open", number=8, head_ref="feature", sha=SHA)
    assert _deliver(server, provider, app_id, secret, "pr_open", own).status_code == 202


def test_an_allowed_fork_gets_preview_env_only_and_no_parent_secret(
    fake_server: Server, fakes: Fakes, tmp_path: Path
) -> None:
    server = fake_server
    app_id, secret = _parent(
        server,
        "github",
        previewAllowForks=True,
        sshKey=make_key(tmp_path).private,
        registryUsername="puller",
        registryPassword="registry-pw-31c9",
        buildArgs=[{"key": "NPM_TOKEN", "value": "npm-token-77aa"}],
        mounts=[
            {"type": "volume", "source": "data", "target": "/data"},
            {"type": "bind", "source": str(tmp_path / "static"), "target": "/host"},
        ],
    )
    assert server.client()(FORK_SETTINGS, id=app_id)["application"] == {
        "previewAllowForks": True,
        "previewInheritEnv": True,
    }
    payload = pull_request("github", "pr_open", number=7, head_ref="evil", sha=SHA, fork=True)
    res = _deliver(server, "github", app_id, secret, "pr_open", payload)
    assert res.status_code == 202, res.text
    dep = wait_finished(server.client(), res.json()["deploymentId"])
    assert dep["status"] == "DONE", dep["errorMessage"]
    [preview] = _rows(server, Application, parent_id=app_id)
    spec = fakes.runtime.services[preview.app_name]
    assert spec.env == {"MODE": "preview"}, "previewEnv only, never the parent's env"
    assert [m.target for m in spec.mounts] == ["/data"], "no bind mount of the host"
    fetched = fakes.git.clones[-1][0]
    assert (fetched.username, fetched.password, fetched.ssh_key) == (None, None, None)
    assert fakes.builder.builds[-1].build_args == {}, "no build argument of the parent's"
    for secret_value in (PARENT_SECRET, "registry-pw-31c9", "npm-token-77aa"):
        assert secret_value not in repr(spec), secret_value
        assert secret_value not in Path(dep_log(server, dep["id"])).read_text()


def dep_log(server: Server, deployment_id: str) -> str:
    [row] = _rows(server, Deployment, id=deployment_id)
    return str(row.log_path)


def test_a_replayed_body_under_a_new_delivery_id_deploys_nothing(
    fake_server: Server, fakes: Fakes
) -> None:
    server = fake_server
    client = server.client()
    app = client(
        CREATE_APP,
        input={
            "name": "hooked",
            "sourceType": "GIT",
            "repository": "https://example.invalid/acme/replayed.git",
            "branch": "main",
        },
    )["createApplication"]
    secret = client(REGENERATE, id=app["id"])["regenerateWebhookSecret"]
    payload = push("github", sha="5" * 40)
    first = _deliver(server, "github", app["id"], secret, "push", payload)
    assert first.status_code == 202, first.text
    wait_finished(client, first.json()["deploymentId"])
    for provider in ("github", "gitea"):  # a new id, or the same bytes as Gitea's delivery
        again = _deliver(server, provider, app["id"], secret, "push", payload)
        assert again.status_code == 200, again.text
        assert again.json()["outcome"] == "duplicate", again.json()
        assert "body" in again.json()["reason"]
    assert len(_rows(server, Deployment, application_id=app["id"])) == 1
    assert len(_rows(server, WebhookDelivery, application_id=app["id"])) == 1
    _healthy_fast(server)
    later = _deliver(server, "github", app["id"], secret, "push", push("github", sha="6" * 40))
    assert later.status_code == 202, "a new push still deploys"


def test_a_file_repository_needs_an_admin_key(fake_server: Server, tmp_path: Path) -> None:
    server = fake_server
    deployer = server.client(Scope.DEPLOY)
    local = {"name": "local", "sourceType": "GIT", "repository": f"file://{tmp_path}/r.git"}
    with pytest.raises(GraphQLError) as refused:
        deployer(CREATE_APP, input=local)
    assert refused.value.codes == ["FORBIDDEN"]
    assert "ADMIN" in refused.value.errors[0]["message"]
    assert _rows(server, Application) == [], "nothing half-written"

    remote = {**local, "repository": "https://example.invalid/acme/web.git"}
    app_id = deployer(CREATE_APP, input=remote)["createApplication"]["id"]
    for change in ({"repository": "file:///etc"}, {"repository": "FILE:///var/lib"}):
        with pytest.raises(GraphQLError) as info:
            deployer(UPDATE, id=app_id, input=change)
        assert info.value.codes == ["FORBIDDEN"], change
    [row] = _rows(server, Application, id=app_id)
    assert row.repository == "https://example.invalid/acme/web.git"

    admin = server.client(Scope.ADMIN)
    local_id = admin(CREATE_APP, input=local)["createApplication"]["id"]
    with pytest.raises(GraphQLError) as info:
        deployer(UPDATE, id=local_id, input={"submodules": True})
    assert info.value.codes == ["FORBIDDEN"], "file:// submodules need ADMIN too"
    updated = admin(UPDATE, id=local_id, input={"submodules": True})["updateApplication"]
    assert updated["submodules"] is True
    _healthy_fast(server)


def _git_adapters(builder: FakeBuilder) -> Any:
    def adapters(settings: Settings) -> Adapters:
        return Adapters(
            git=GitPythonClient(block_private=settings.block_private_sources),
            builders={BuildType.DOCKERFILE: builder},
            runtime=FakeRuntime(),
        )

    return adapters


@pytest.mark.parametrize("block", [True, False])
def test_a_loopback_repository_is_refused_when_private_sources_are_blocked(
    tmp_path: Path, block: bool
) -> None:
    remote = history_repo(tmp_path / "srv")
    with (
        serve_git(tmp_path / "srv", username="git", password="tok") as http,
        running_server(
            tmp_path / "data", _git_adapters(FakeBuilder()), block_private_sources=block
        ) as server,
    ):
        client = server.client(Scope.DEPLOY)
        url = http.url(remote).replace("http://", "http://git:tok@")
        app = client(
            CREATE_APP,
            input={"name": "loop", "sourceType": "GIT", "repository": url, "branch": "main"},
        )["createApplication"]
        dep = client(DEPLOY, id=app["id"])
        done = wait_finished(client, dep["deployApplication"]["id"])
        if not block:
            assert done["status"] == "DONE", done["errorMessage"]
            assert done["commitSha"] == remote.head
            return
        assert done["status"] == "ERROR"
        message = done["errorMessage"]
        assert "not allowed" in message and "SLIPWAY_BLOCK_PRIVATE_SOURCES" in message
        port = str(http.server_address[1])
        assert port not in message.replace(http.url(remote), ""), "nothing names what answered"
        assert http.seen_users == [], "git never connected"
        _healthy_fast(server)


# --- the proof on the real engine ------------------------------------------------------


def _fork_commit(bare: Path, number: int) -> str:
    """A commit that only a fork has, reachable in the parent as ``refs/pull/<n>/head``
    (as GitHub keeps a fork's pull request); no branch of the parent holds it."""
    work = bare.parent / "work"
    git = ["git", "-C", str(work), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "checkout", "-q", "-b", "fork-feature"], check=True)
    (work / "www" / "index.html").write_text("built from the fork\n")
    subprocess.run([*git, "commit", "-q", "-am", "Fork page"], check=True)
    target = f"HEAD:refs/pull/{number}/head"
    subprocess.run([*git, "push", "-q", str(bare), target], check=True)
    out = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _service_logs(docker_client: Any, name: str) -> str:
    found = docker_client.containers.list(
        all=True, filters={"label": f"com.docker.swarm.service.name={name}"}
    )
    return "".join(c.logs().decode(errors="replace") for c in found)


@pytest.mark.docker
def test_on_the_real_engine_a_fork_gets_no_service_then_no_parent_secret(
    real_server: Server,
    git_repo: Any,
    cleanup: list[str],
    docker_client: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = real_server.client()
    bare = git_repo("static-ok")
    sha = _fork_commit(bare, 7)
    static = tmp_path / "static"
    static.mkdir()
    base = free_port() - 7
    parent = client(
        CREATE_APP,
        input={
            "name": "web",
            "sourceType": "GITHUB",
            "repository": f"file://{bare}",
            "branch": "main",
            "ports": [{"publishedPort": free_port(), "targetPort": 8080, "publishMode": "HOST"}],
            "env": [{"key": "DATABASE_PASSWORD", "value": PARENT_SECRET}],
            "mounts": [{"type": "bind", "source": str(static), "target": "/host"}],
            # the container prints its environment first: a leaked secret would be logged
            "command": ["sh", "-c", "env; exec httpd -f -v -p 8080 -h /www"],
            "previewEnabled": True,
            "previewInheritEnv": True,
            "previewPortBase": base,
            "previewEnv": [{"key": "MODE", "value": "fork-preview"}],
        },
    )["createApplication"]
    preview_name = f"{parent['appName']}-pr-7"
    cleanup.append(preview_name)
    secret = client(REGENERATE, id=parent["id"])["regenerateWebhookSecret"]

    opened = pull_request(
        "github", "pr_open", number=7, head_ref="fork-feature", sha=sha, fork=True
    )
    refused = _deliver(real_server, "github", parent["id"], secret, "pr_open", opened)
    assert refused.status_code == 200 and refused.json()["outcome"] == "ignored", refused.text
    assert "fork" in refused.json()["reason"]
    _healthy_fast(real_server)
    time.sleep(1)  # nothing was queued; give a wrong one the time to show
    assert docker_client.services.list(filters={"name": preview_name}) == []
    assert _rows(real_server, Application, parent_id=parent["id"]) == []
    assert _rows(real_server, Deployment) == []

    client(UPDATE, id=parent["id"], input={"previewAllowForks": True})
    synced = pull_request(
        "github", "pr_sync", number=7, head_ref="fork-feature", sha=sha, fork=True
    )
    built = _deliver(real_server, "github", parent["id"], secret, "pr_sync", synced)
    assert built.status_code == 202, built.text
    dep = wait_finished(client, built.json()["deploymentId"], timeout=180)
    assert dep["status"] == "DONE", dep["errorMessage"]
    assert dep["commitSha"] == sha, "the fork's head commit is what was built"
    with urllib.request.urlopen(f"http://127.0.0.1:{base + 7}/", timeout=5) as page:
        assert "built from the fork" in page.read().decode()

    spec = docker_client.services.get(preview_name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "MODE=fork-preview" in spec["Env"]
    assert not any(e.startswith("DATABASE_PASSWORD=") for e in spec["Env"]), spec["Env"]
    assert all(m.get("Type") != "bind" for m in spec.get("Mounts", [])), spec.get("Mounts")
    deadline = time.monotonic() + 30
    while "MODE=fork-preview" not in (logs := _service_logs(docker_client, preview_name)):
        assert time.monotonic() < deadline, "the preview's container printed no env"
        time.sleep(0.5)
    deployment_log = Path(dep_log(real_server, dep["id"])).read_text()
    server_log = "\n".join(r.getMessage() for r in caplog.records)
    for where, text in (
        ("container", logs),
        ("deployment", deployment_log),
        ("server", server_log),
    ):
        assert PARENT_SECRET not in text, f"the parent's secret is in the {where} log"
    assert "Fork page" in deployment_log, "the deployment log is the fork's build"
