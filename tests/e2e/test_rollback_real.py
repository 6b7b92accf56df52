"""rollbackDeployment on the real engine: git -> build -> Swarm, then back to an earlier
release; what cannot be rolled back is BAD_USER_INPUT; a rollback can be cancelled."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server
from tests.e2e.polling import messages, poll, timed_cancel, wait_step
from tests.e2e.queries import DEPLOY
from tests.support.versions import HEALTH_PATH, VersionedRepo

pytestmark = pytest.mark.docker

ROLLBACK = """
mutation($id: ID!, $app: ID) { rollbackDeployment(deploymentId: $id, applicationId: $app) {
  id status trigger rollbackOfId title } }"""
HISTORY = """
query($id: ID!) { application(id: $id) { rollbackActive
  deployments(first: 20) { edges { node { id status trigger canRollback } } } } }"""


def _get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
        body: str = res.read().decode()
        return body


def _answers(port: int) -> str | None:
    try:
        return _get(port)
    except OSError:
        return None


def _image(docker_client: Any, name: str) -> str:
    spec = docker_client.services.get(name).attrs["Spec"]
    image: str = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    return image.split("@", 1)[0]


def _refused(client: Client, dep_id: str, app_id: str | None = None) -> tuple[str, str]:
    with pytest.raises(GraphQLError) as err:
        client(ROLLBACK, id=dep_id, app=app_id)
    return err.value.codes[0], err.value.errors[0]["message"]


def _can(client: Client, app_id: str) -> dict[str, bool]:
    edges = client(HISTORY, id=app_id)["application"]["deployments"]["edges"]
    return {e["node"]["id"]: e["node"]["canRollback"] for e in edges}


def _deploy(client: Client, app_id: str, timeout: float = 180) -> dict[str, Any]:
    return wait_finished(client, client(DEPLOY, id=app_id)["deployApplication"]["id"], timeout)


def test_rollback_to_v1_answers_v1_and_what_cannot_be_rolled_back_is_refused(
    real_server: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        real_server, repo.bare, cleanup, healthCheckPath=HEALTH_PATH, healthTimeout=40
    )
    name, port = app["appName"], app["port"]
    v1 = _deploy(client, app["id"])
    assert v1["status"] == "DONE", v1["errorMessage"]
    assert _get(port) == "version one\n"

    repo.commit("version two")
    v2 = client(DEPLOY, id=app["id"])["deployApplication"]
    # v2 is queued or running: not a rollback point, and a rollback queues behind it
    code, message = _refused(client, v2["id"])
    assert code == "BAD_USER_INPUT" and "only a DONE deployment can be rolled back" in message
    back = client(ROLLBACK, id=v1["id"], app=app["id"])["rollbackDeployment"]
    assert back["status"] == "QUEUED" and back["trigger"] == "ROLLBACK"
    assert back["rollbackOfId"] == v1["id"] and v1["id"] in back["title"]
    v2 = wait_finished(client, v2["id"], 180)
    assert v2["status"] == "DONE", v2["errorMessage"]
    back = wait_finished(client, back["id"], 180)
    assert back["status"] == "DONE", back["errorMessage"]

    assert _get(port) == "version one\n", "the port answers v1's content again"
    assert _image(docker_client, name) == f"slipway/{name}:{v1['id']}"
    assert back["imageRef"] == f"slipway/{name}:{v1['id']}"
    assert [s["step"] for s in back["steps"]] == ["ROLLBACK_POINT", "RELEASE", "VERIFY_HEALTH"]
    assert back["commitSha"] == v1["commitSha"]
    logged = "\n".join(m["message"] for m in back["logs"])
    assert f"rolling back to deployment {v1['id']} of {name}, image slipway/{name}:{v1['id']}" in (
        logged
    )
    labels = docker_client.services.get(name).attrs["Spec"]["Labels"]
    assert labels["slipway.deployment"] == back["id"]
    assert _can(client, app["id"]) == {v1["id"]: True, v2["id"]: True, back["id"]: True}

    # v3 fails its health check: ERROR, what ran before it (the rollback, v1) answers again
    repo.commit("version three", health=500)
    v3 = _deploy(client, app["id"], 240)
    assert v3["status"] == "ERROR" and "was restored and answers again" in v3["errorMessage"]
    assert _get(port) == "version one\n"
    code, message = _refused(client, v3["id"])
    assert code == "BAD_USER_INPUT" and f"{v3['id']} ended ERROR" in message
    assert _can(client, app["id"])[v3["id"]] is False

    other = create_git_app(real_server, repo.bare, cleanup, name="other")
    code, message = _refused(client, v1["id"], other["id"])
    assert code == "BAD_USER_INPUT" and "belongs to another application" in message
    code, message = _refused(client, "0" * 24)
    assert code == "BAD_USER_INPUT" and "does not exist" in message
    code, _ = _refused(real_server.client(Scope.READ), v1["id"])
    assert code == "FORBIDDEN"

    client(
        "mutation($id: ID!) { updateApplication(id: $id, input: {rollbackActive: false}) { id } }",
        id=app["id"],
    )
    code, message = _refused(client, v2["id"])
    assert code == "BAD_USER_INPUT" and "rollbackActive is off" in message
    assert not any(_can(client, app["id"]).values())


def test_a_rollback_can_be_cancelled_and_the_service_goes_back(
    real_server: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        real_server, repo.bare, cleanup, healthCheckPath=HEALTH_PATH, healthTimeout=60
    )
    v1 = _deploy(client, app["id"])
    repo.commit("version two")
    v2 = _deploy(client, app["id"])
    assert (v1["status"], v2["status"]) == ("DONE", "DONE"), (v1, v2)
    back = client(ROLLBACK, id=v1["id"])["rollbackDeployment"]
    # VERIFY_HEALTH holds until v1's task has run steadily for a while: cancel lands in it
    wait_step(client, back["id"], "VERIFY_HEALTH", timeout=60)
    _, ended, _ = timed_cancel(client, app["id"], back["id"])
    assert ended["status"] == "CANCELLED", ended
    assert any("rolling service" in m for m in messages(client, back["id"]))
    assert _image(docker_client, app["appName"]) == f"slipway/{app['appName']}:{v2['id']}"
    # v1's task may answer for a moment until Swarm has replaced it with v2's again
    body = poll(
        lambda: (b if (b := _answers(app["port"])) == "version two\n" else None),
        timeout=60,
        what="v2 to answer again",
    )
    assert body == "version two\n"
    # a cancelled rollback is no rollback point; v1 still is
    assert _can(client, app["id"]) == {v1["id"]: True, v2["id"]: True, back["id"]: False}
