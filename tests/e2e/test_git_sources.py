"""Git sources through the API over real HTTP: a real fetch (GitPythonClient) from real
remotes, with fake builder and runtime adapters (the real engine is exercised elsewhere)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.fake import FakeBuilder
from app.engine.context import Adapters
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.git import GitPythonClient
from app.types import BuildType, Scope
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server, running_server
from tests.e2e.queries import CREATE_APP
from tests.services import missing
from tests.support.git_remotes import (
    HTTP_BACKEND,
    history_repo,
    make_key,
    run_sshd,
    serve_git,
    sshd_available,
)

TOKEN = "ghp-e2e-5ecr3t-t0ken"
DEPLOY_SHA = """
mutation($id: ID!, $sha: String) {
  deployApplication(applicationId: $id, commitSha: $sha) { id status } }"""
UPDATE = """
mutation($id: ID!, $input: UpdateApplicationInput!) { updateApplication(id: $id, input: $input) {
  id } }"""
APP = "query($id: ID!) { application(id: $id) { id repository knownHosts hasSshKey } }"


@pytest.fixture(scope="module")
def real_git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (starting and stopping one takes about 2 s)."""
    if shutil.which("git") is None or not HTTP_BACKEND.is_file():
        missing("git and git-http-backend")

    def adapters(_: Settings) -> Adapters:
        return Adapters(
            git=GitPythonClient(),
            builders={BuildType.DOCKERFILE: FakeBuilder(lines=1)},
            runtime=FakeRuntime(),
        )

    with running_server(tmp_path_factory.mktemp("git-sources") / "data", adapters) as server:
        yield server


def _deploy(client: Client, app_id: str, sha: str | None = None) -> dict[str, Any]:
    dep = client(DEPLOY_SHA, id=app_id, sha=sha)["deployApplication"]
    return wait_finished(client, dep["id"])


def test_github_token_app_deploys_the_requested_older_commit(
    real_git_server: Server, tmp_path: Path
) -> None:
    remote = history_repo(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="x-access-token", password=TOKEN) as git_server:
        client = real_git_server.client(Scope.DEPLOY)
        url = git_server.url(remote).replace("http://", f"http://:{TOKEN}@")
        app = client(CREATE_APP, input=GIT_APP(sourceType="GITHUB", repository=url))
        app = app["createApplication"]
        assert app["repository"] == git_server.url(remote), "the token is split off"
        done = _deploy(client, app["id"], remote.shas[0])
        assert done["status"] == "DONE", done["errorMessage"]
        assert done["commitSha"] == remote.shas[0] != remote.head
        latest = _deploy(client, app["id"])
        assert latest["status"] == "DONE", latest["errorMessage"]
        assert latest["commitSha"] == remote.head
        assert set(git_server.seen_users) <= {None, "x-access-token"}
    log = Path(done["logPath"]).read_text() + Path(latest["logPath"]).read_text()
    assert TOKEN not in log and "x-access-token" not in log
    code = real_git_server.settings.work_dir / app["appName"] / "code"
    assert TOKEN not in (code / ".git" / "config").read_text()


DEPLOY_REF = """
mutation($id: ID!, $branch: String, $tag: String) {
  deployApplication(applicationId: $id, branch: $branch, tag: $tag) { id } }"""
ASKED = "query($id: ID!) { deployment(id: $id) { sourceRef requestedCommitSha } }"


def test_a_tag_or_another_branch_can_be_deployed_by_name(
    real_git_server: Server, tmp_path: Path
) -> None:
    remote = history_repo(tmp_path / "srv")
    work = tmp_path / "srv" / "app-work"
    shutil.copy(work / "version.txt", work / "other.txt")
    for args in (
        ("checkout", "-q", "-b", "next", remote.shas[0]),
        ("add", "other.txt"),
        ("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", "n"),
        ("push", "-q", str(remote.bare), "next"),
    ):
        subprocess.run(["git", "-C", str(work), *args], check=True)
    next_sha = subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    admin = real_git_server.client(Scope.ADMIN)  # a file:// repository needs ADMIN to set
    app_id = admin(CREATE_APP, input=GIT_APP(repository=f"file://{remote.bare}"))[
        "createApplication"
    ]["id"]
    client = real_git_server.client(Scope.DEPLOY)  # deploying it needs only DEPLOY
    for variables, sha in (({"tag": "v1"}, remote.tag_sha), ({"branch": "next"}, next_sha)):
        dep = client(DEPLOY_REF, id=app_id, **variables)["deployApplication"]
        done = wait_finished(client, dep["id"])
        assert done["status"] == "DONE", done["errorMessage"]
        assert done["commitSha"] == sha, variables
        assert client(ASKED, id=dep["id"])["deployment"]["sourceRef"] in variables.values()
    for variables in ({"tag": "v1", "branch": "main"}, {"tag": "--upload-pack=x"}, {"branch": ""}):
        with pytest.raises(GraphQLError) as info:
            client(DEPLOY_REF, id=app_id, **variables)
        assert info.value.codes == ["BAD_USER_INPUT"], variables


def test_a_commit_that_does_not_exist_fails_the_deployment_clearly(
    real_git_server: Server, tmp_path: Path
) -> None:
    remote = history_repo(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="x-access-token", password=TOKEN) as git_server:
        client = real_git_server.client(Scope.DEPLOY)
        url = git_server.url(remote).replace("http://", f"http://:{TOKEN}@")
        app_id = client(CREATE_APP, input=GIT_APP(sourceType="GITHUB", repository=url))[
            "createApplication"
        ]["id"]
        done = _deploy(client, app_id, "0" * 40)
    assert done["status"] == "ERROR"
    assert f"commit {'0' * 40} not found" in done["errorMessage"]
    assert TOKEN not in done["errorMessage"]


def test_ssh_deploy_records_the_host_key_on_first_use(
    real_git_server: Server, tmp_path: Path
) -> None:
    if not sshd_available():
        missing("/usr/sbin/sshd, ssh and ssh-keygen (scripts/services up sshd)")
    remote = history_repo(tmp_path / "srv")
    key = make_key(tmp_path)
    with run_sshd(tmp_path / "sshd", [key.public]) as sshd:
        client = real_git_server.client(Scope.DEPLOY)
        app_id = client(CREATE_APP, input=GIT_APP(repository=sshd.url(remote), sshKey=key.private))[
            "createApplication"
        ]["id"]
        done = _deploy(client, app_id)
        assert done["status"] == "DONE", done["errorMessage"]
        assert done["commitSha"] == remote.head
        application = client(APP, id=app_id)["application"]
        assert application["knownHosts"] == sshd.known_hosts and application["hasSshKey"]
        assert any("Recorded" in line["message"] for line in done["logs"])
        again = _deploy(client, app_id)  # now checked strictly against the recorded key
        assert again["status"] == "DONE", again["errorMessage"]
        assert client(APP, id=app_id)["application"]["knownHosts"] == sshd.known_hosts
        assert not any("Recorded" in line["message"] for line in again["logs"])
    assert "PRIVATE KEY" not in Path(done["logPath"]).read_text()


@pytest.mark.parametrize(
    "bad",
    [
        {"repository": "--upload-pack=touch /tmp/pwned"},
        {"repository": "ext::sh -c touch% /tmp/pwned"},
        {"repository": "ssh://-oProxyCommand=touch%20/tmp/pwned/x"},
        {"branch": "--upload-pack=x"},
        {"branch": "a/../b"},
    ],
)
def test_hostile_git_settings_are_bad_user_input(
    real_git_server: Server, bad: dict[str, str]
) -> None:
    client = real_git_server.client(Scope.DEPLOY)
    with pytest.raises(GraphQLError) as created:
        client(CREATE_APP, input=GIT_APP(**bad))
    assert created.value.codes == ["BAD_USER_INPUT"]
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    with pytest.raises(GraphQLError) as updated:
        client(UPDATE, id=app_id, input=bad)
    assert updated.value.codes == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("sha", ["--foo", "HEAD~1", "abc", "z" * 40, "a" * 65])
def test_deploy_with_a_bad_commit_sha_is_bad_user_input(real_git_server: Server, sha: str) -> None:
    client = real_git_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    with pytest.raises(GraphQLError) as err:
        client(DEPLOY_SHA, id=app_id, sha=sha)
    assert err.value.codes == ["BAD_USER_INPUT"]
    assert "commit sha must be 7 to 64 hexadecimal digits" in str(err.value)
    query = "query($id: ID!) { deployments(applicationId: $id) { edges { node { id } } } }"
    assert client(query, id=app_id)["deployments"]["edges"] == [], "nothing was queued"
