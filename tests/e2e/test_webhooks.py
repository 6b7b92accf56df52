"""Webhooks over real HTTP: signed deliveries from each provider queue the payload's commit;
forged, unsigned and replayed ones start nothing; the skip rules hold end to end."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.builders.fake import FakeBuilder
from app.db.models import Deployment, WebhookDelivery
from app.engine.context import Adapters
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.git import GitPythonClient
from app.types import BuildType, GitSourceSpec, Scope
from tests.e2e.conftest import Fakes, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server, running_server
from tests.e2e.queries import CREATE_APP
from tests.fixtures.webhooks.samples import PROVIDERS, encode, push, signed_headers

SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"
SOURCE_TYPES = {"github": "GITHUB", "gitlab": "GITLAB", "gitea": "GITEA", "bitbucket": "BITBUCKET"}
REGENERATE = """
mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }"""
REPO = """
query($id: ID!) { application(id: $id) { repository } }"""
APP_HOOK = """
query($id: ID!) { application(id: $id) { webhookPath hasWebhookSecret } }"""


class Hooks:
    """One server, an admin client, and deliveries signed as each provider signs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client: Client = server.client()
        self.http = httpx.Client(timeout=30)
        self.made = 0

    def app(self, provider: str = "github", **extra: Any) -> tuple[str, str]:
        """A new application of that provider's family and its webhook secret."""
        source = extra.pop("sourceType", SOURCE_TYPES[provider])
        self.made += 1  # each its own repository URL, to find its fetches by
        default_repo = f"https://example.invalid/acme/web-{self.made}.git"
        app = self.client(
            CREATE_APP,
            input={
                "name": "hooked",
                "sourceType": source,
                "repository": extra.pop("repository", default_repo),
                "branch": "main",
                **extra,
            },
        )["createApplication"]
        secret = self.client(REGENERATE, id=app["id"])["regenerateWebhookSecret"]
        return app["id"], secret

    def url(self, provider: str, app_id: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/webhooks/{provider}/{app_id}"

    def send(
        self,
        provider: str,
        app_id: str,
        payload: dict[str, Any],
        *,
        secret: str | None,
        kind: str = "push",
        delivery: str | None = "",
        body: bytes | None = None,
    ) -> httpx.Response:
        """``delivery``: "" a fresh id, None no delivery header at all."""
        raw = encode(payload) if body is None else body
        delivery = uuid.uuid4().hex if delivery == "" else delivery
        headers = signed_headers(provider, kind, raw, secret, delivery=delivery)
        return self.http.post(self.url(provider, app_id), content=raw, headers=headers)

    def deployments(self, app_id: str) -> list[Deployment]:
        with self.server.db.session() as session:
            query = select(Deployment).where(Deployment.application_id == app_id)
            return list(session.scalars(query.order_by(Deployment.id)).all())

    def deliveries(self, app_id: str) -> list[WebhookDelivery]:
        with self.server.db.session() as session:
            query = select(WebhookDelivery).where(WebhookDelivery.application_id == app_id)
            return list(session.scalars(query).all())

    def fetches(self, fakes: Fakes, app_id: str) -> list[GitSourceSpec]:
        """What the fake git client was asked to fetch for this application."""
        repo = self.client(REPO, id=app_id)["application"]["repository"]
        return [spec for spec, _ in fakes.git.clones if spec.repository == repo]


@pytest.fixture(scope="module")
def shared_fakes(tmp_path_factory: pytest.TempPathFactory) -> Fakes:
    src = tmp_path_factory.mktemp("src")
    (src / "Dockerfile").write_text("FROM busybox:1.36\n")
    return Fakes(src)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory, shared_fakes: Fakes) -> Iterator[Hooks]:
    """One server for the module (starting and stopping one costs ~2 s); every test makes
    its own applications and looks only at those."""
    with running_server(tmp_path_factory.mktemp("data"), shared_fakes.adapters) as server:
        hooks = Hooks(server)
        yield hooks
        hooks.http.close()


@pytest.fixture
def fakes(shared_fakes: Fakes) -> Fakes:
    return shared_fakes


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_push_deploys_the_payload_commit_once(
    hooks: Hooks, fakes: Fakes, provider: str
) -> None:
    app_id, secret = hooks.app(provider)
    payload = push(provider, sha=SHA, message="Fix the footer\n\nand more")

    forged = hooks.send(provider, app_id, payload, secret="guessed-" + secret[:8])
    unsigned = hooks.send(provider, app_id, payload, secret=None)
    for res in (forged, unsigned):
        assert res.status_code == 401
        assert res.json() == {"error": "signature missing or invalid"}
        assert secret not in res.text
    assert hooks.deployments(app_id) == [] and hooks.deliveries(app_id) == []

    res = hooks.send(provider, app_id, payload, secret=secret, delivery=f"{app_id}-1")
    assert res.status_code == 202, res.text
    body = res.json()
    assert body["outcome"] == "deployed"
    [dep] = hooks.deployments(app_id)
    assert body["deploymentId"] == dep.id
    assert (dep.trigger, dep.requested_sha, dep.source_ref, dep.source_ref_kind) == (
        "PUSH",
        SHA,
        "main",
        "branch",
    )
    assert dep.title == "Fix the footer"
    assert dep.description is not None and SHA in dep.description
    assert secret not in res.text

    replay = hooks.send(provider, app_id, payload, secret=secret, delivery=f"{app_id}-1")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")

    assert wait_finished(hooks.client, dep.id)["status"] == "DONE"
    assert len(hooks.deployments(app_id)) == 1
    # the fetch was asked for exactly that commit on that branch
    [spec] = hooks.fetches(fakes, app_id)
    assert (spec.commit_sha, spec.branch, spec.tag) == (SHA, "main", None)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tag_push_deploys_with_trigger_type_tag(hooks: Hooks, fakes: Fakes, provider: str) -> None:
    app_id, secret = hooks.app(provider, triggerType="TAG")
    branch_push = hooks.send(provider, app_id, push(provider, sha=SHA), secret=secret)
    assert branch_push.json()["outcome"] == "ignored"
    payload = push(provider, sha=SHA, ref="v2.0.1", tag=True, message="Release 2.0.1")
    res = hooks.send(provider, app_id, payload, secret=secret, kind="tag")
    assert res.status_code == 202, res.text
    [dep] = hooks.deployments(app_id)
    assert (dep.trigger, dep.requested_sha, dep.source_ref, dep.source_ref_kind) == (
        "TAG",
        SHA,
        "v2.0.1",
        "tag",
    )
    wait_finished(hooks.client, dep.id)
    [spec] = hooks.fetches(fakes, app_id)
    assert (spec.tag, spec.commit_sha) == ("v2.0.1", SHA)


def test_tag_push_without_trigger_type_tag_is_ignored(hooks: Hooks) -> None:
    app_id, secret = hooks.app("github")
    payload = push("github", sha=SHA, ref="v1", tag=True)
    res = hooks.send("github", app_id, payload, secret=secret, kind="tag")
    assert (res.status_code, res.json()["outcome"]) == (200, "ignored")
    assert "triggerType" in res.json()["reason"]
    assert hooks.deployments(app_id) == []


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_push_to_another_branch_is_ignored(hooks: Hooks, provider: str) -> None:
    app_id, secret = hooks.app(provider)
    elsewhere = push(provider, sha=SHA, ref="develop")
    res = hooks.send(provider, app_id, elsewhere, secret=secret, delivery=f"{app_id}-d")
    assert (res.status_code, res.json()["outcome"]) == (200, "ignored")
    assert "develop" in res.json()["reason"]
    assert hooks.deployments(app_id) == []
    # recorded all the same: the same delivery again is a duplicate
    again = hooks.send(provider, app_id, elsewhere, secret=secret, delivery=f"{app_id}-d")
    assert again.json()["outcome"] == "duplicate"


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_watch_paths(hooks: Hooks, provider: str) -> None:
    app_id, secret = hooks.app(provider, watchPaths=["api/**", "*.toml"])
    docs = push(provider, sha=SHA, files=["docs/guide.md", "README.md"])
    res = hooks.send(provider, app_id, docs, secret=secret)
    assert (res.status_code, res.json()["outcome"]) == (200, "skipped")
    assert "watch paths" in res.json()["reason"]
    assert hooks.deployments(app_id) == []
    api = push(provider, sha="1" * 40, files=["docs/guide.md", "api/v1/routes.py"])
    res = hooks.send(provider, app_id, api, secret=secret)
    assert res.status_code == 202, res.text
    assert [d.requested_sha for d in hooks.deployments(app_id)] == ["1" * 40]


def test_bitbucket_has_no_file_lists_so_it_deploys_and_says_so(hooks: Hooks) -> None:
    app_id, secret = hooks.app("bitbucket", watchPaths=["api/**"])
    res = hooks.send("bitbucket", app_id, push("bitbucket", sha=SHA), secret=secret)
    assert res.status_code == 202, res.text
    assert "lists no changed files" in res.json()["reason"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_skip_ci_in_the_head_commit_skips(hooks: Hooks, provider: str) -> None:
    app_id, secret = hooks.app(provider)
    payload = push(provider, sha=SHA, message="Fix typo [skip ci]")
    res = hooks.send(provider, app_id, payload, secret=secret)
    assert (res.status_code, res.json()["outcome"]) == (200, "skipped")
    assert "[skip ci]" in res.json()["reason"]
    assert hooks.deployments(app_id) == []


def test_auto_deploy_off_acknowledges_and_deploys_nothing(hooks: Hooks) -> None:
    app_id, secret = hooks.app("gitea", autoDeploy=False)
    res = hooks.send("gitea", app_id, push("gitea", sha=SHA), secret=secret)
    assert (res.status_code, res.json()["outcome"]) == (200, "ignored")
    assert hooks.deployments(app_id) == []


def test_regenerating_the_secret_invalidates_the_old_one(hooks: Hooks) -> None:
    app_id, old = hooks.app("github")
    info = hooks.client(APP_HOOK, id=app_id)["application"]
    assert info == {"webhookPath": f"/webhooks/github/{app_id}", "hasWebhookSecret": True}
    new = hooks.client(REGENERATE, id=app_id)["regenerateWebhookSecret"]
    assert new != old and len(new) >= 40
    stale = hooks.send("github", app_id, push("github", sha=SHA), secret=old)
    assert stale.status_code == 401
    fresh = hooks.send("github", app_id, push("github", sha=SHA), secret=new)
    assert fresh.status_code == 202
    with hooks.server.db.session() as session:  # stored encrypted, never in the clear
        from app.db.models import Application

        stored = session.get(Application, app_id)
        assert stored is not None and stored.webhook_secret_enc
        assert new not in stored.webhook_secret_enc


def test_regenerate_needs_deploy_scope_and_a_git_application(hooks: Hooks) -> None:
    app_id, _ = hooks.app("github")
    reader = hooks.server.client(Scope.READ)
    with pytest.raises(GraphQLError) as denied:
        reader(REGENERATE, id=app_id)
    assert denied.value.codes == ["FORBIDDEN"]
    image = hooks.client(
        CREATE_APP, input={"name": "img", "sourceType": "DOCKER", "dockerImage": "busybox:1.36"}
    )["createApplication"]
    with pytest.raises(GraphQLError) as bad:
        hooks.client(REGENERATE, id=image["id"])
    assert bad.value.codes == ["BAD_USER_INPUT"]


def test_http_edges(hooks: Hooks) -> None:
    app_id, secret = hooks.app("github")
    payload = push("github", sha=SHA)
    # unknown provider: 404; unknown application: the same 401 as a bad signature
    assert hooks.http.post(hooks.url("gitbucket", app_id), content=b"{}").status_code == 404
    unknown = hooks.send("github", "0" * 24, payload, secret=secret)
    assert (unknown.status_code, unknown.json()) == (401, {"error": "signature missing or invalid"})
    # the provider must match the application's source
    wrong = hooks.send("gitlab", app_id, payload, secret=secret)
    assert wrong.status_code == 400 and "github" in wrong.json()["error"]
    # too large: refused before anything is read past the limit
    big = b"{" + b" " * (5 * 1024 * 1024 + 10) + b"}"
    too_big = hooks.send("github", app_id, {}, secret=secret, body=big)
    assert too_big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(6):
            yield b" " * (1024 * 1024)

    signed = {"x-hub-signature-256": "sha256=" + "0" * 64}  # unsigned: 401 unread (below)
    streamed = hooks.http.post(hooks.url("github", app_id), content=chunks(), headers=signed)
    assert streamed.status_code == 413
    # ping
    ping = hooks.send("github", app_id, {"zen": "hi", "hook_id": 1}, secret=secret, kind="ping")
    assert (ping.status_code, ping.json()["outcome"]) == (200, "pong")
    # GET is not a delivery
    assert hooks.http.get(hooks.url("github", app_id)).status_code == 405
    assert hooks.deployments(app_id) == []


def test_custom_git_app_takes_any_provider(hooks: Hooks) -> None:
    app_id, secret = hooks.app("github", sourceType="GIT")
    for n, provider in enumerate(PROVIDERS, 1):
        res = hooks.send(provider, app_id, push(provider, sha=f"{n}" * 40), secret=secret)
        assert res.status_code == 202, (provider, res.text)
        # one at a time: a second PUSH queued behind it would be a distinct request anyway
        wait_finished(hooks.client, res.json()["deploymentId"])
    assert [d.requested_sha for d in hooks.deployments(app_id)] == [
        f"{n}" * 40 for n in (1, 2, 3, 4)
    ]


# --- the commit built is the payload's, with a real git remote ---------------------------


def git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def two_commit_remote(tmp_path: Path) -> tuple[Path, str, str]:
    """A bare ``file://`` remote whose main has two commits: (path, older sha, newer sha)."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "Dockerfile").write_text("FROM busybox:1.36\n")
    (work / "version.txt").write_text("one\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    older = git(work, "rev-parse", "HEAD")
    (work / "version.txt").write_text("two\n")
    git(work, "commit", "-q", "-am", "second")
    newer = git(work, "rev-parse", "HEAD")
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare, older, newer


def test_the_deployment_builds_the_payloads_commit_from_a_real_remote(
    tmp_path: Path, two_commit_remote: tuple[Path, str, str]
) -> None:
    bare, older, newer = two_commit_remote
    builder = FakeBuilder()

    def adapters(_: Settings) -> Adapters:
        return Adapters(
            git=GitPythonClient(),
            builders={BuildType.DOCKERFILE: builder},
            runtime=FakeRuntime(),
        )

    with running_server(tmp_path / "data", adapters) as server:
        hooks = Hooks(server)
        app_id, secret = hooks.app("github", sourceType="GIT", repository=f"file://{bare}")
        payload = push("github", sha=older, message="first")
        res = hooks.send("github", app_id, payload, secret=secret)
        assert res.status_code == 202, res.text
        dep = wait_finished(hooks.client, res.json()["deploymentId"])
        assert dep["status"] == "DONE", dep["errorMessage"]
        assert dep["commitSha"] == older != newer
        hooks.http.close()


ROLLBACK = "mutation($id: ID!) { rollbackDeployment(deploymentId: $id) { id } }"
DEPLOY_NOW = "mutation($id: ID!) { deployApplication(applicationId: $id) { id } }"


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_after_a_rollback_pushes_are_skipped_until_a_manual_deploy(
    hooks: Hooks, provider: str
) -> None:
    app_id, secret = hooks.app(provider)
    first = hooks.client(DEPLOY_NOW, id=app_id)["deployApplication"]["id"]
    assert wait_finished(hooks.client, first)["status"] == "DONE"
    back = hooks.client(ROLLBACK, id=first)["rollbackDeployment"]["id"]
    # skipped from the moment the rollback is queued, not only once it has run
    res = hooks.send(provider, app_id, push(provider, sha=SHA), secret=secret)
    assert (res.status_code, res.json()["outcome"]) == (200, "skipped"), res.text
    reason = res.json()["reason"]
    assert f"rolled back (deployment {back})" in reason and "next manual deploy" in reason
    assert wait_finished(hooks.client, back)["status"] == "DONE"
    res = hooks.send(provider, app_id, push(provider, sha="2" * 40), secret=secret)
    assert res.json()["outcome"] == "skipped"
    assert [d.trigger for d in hooks.deployments(app_id)] == ["MANUAL", "ROLLBACK"]
    [delivery, *_] = [d for d in hooks.deliveries(app_id) if d.outcome.startswith("skipped")]
    assert "rolled back" in delivery.outcome

    manual = hooks.client(DEPLOY_NOW, id=app_id)["deployApplication"]["id"]
    wait_finished(hooks.client, manual)
    res = hooks.send(provider, app_id, push(provider, sha="3" * 40), secret=secret)
    assert (res.status_code, res.json()["outcome"]) == (202, "deployed"), res.text
    assert hooks.deployments(app_id)[-1].requested_sha == "3" * 40
