"""Real deployments through the API: git remote -> docker build -> Swarm service -> HTTP."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import DEPLOY, REDEPLOY

pytestmark = pytest.mark.docker


def _get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
        body: str = res.read().decode()
        return body


def test_git_dockerfile_app_is_deployed_and_answers(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    repo = git_repo("static-ok")
    app = create_git_app(
        real_server,
        repo,
        cleanup,
        healthCheckPath="/health",
        env=[{"key": "GREETING", "value": "hi-there-42"}],
    )
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    done = wait_finished(client, dep["id"], timeout=180)
    assert done["status"] == "DONE", done["errorMessage"]
    assert "hello from slipway" in _get(app["port"])
    assert len(done["commitSha"]) == 40
    assert done["imageRef"] == f"slipway/{app['appName']}:{dep['id']}"
    steps = [s["step"] for s in done["steps"]]
    assert steps == ["FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH"]
    messages = [line["message"] for line in done["logs"]]
    assert any("Step" in m or "COPY" in m for m in messages), "build output is in the log"
    service = docker_client.services.get(app["appName"])
    spec = service.attrs["Spec"]
    assert "GREETING=hi-there-42" in spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "hi-there-42" not in str(spec.get("Labels")), "env values never go in labels"
    assert "hi-there-42" not in Path(done["logPath"]).read_text()

    # Redeploy: rebuild without fetching, update the same service in place.
    again = client(REDEPLOY, id=app["id"])["redeployApplication"]
    second = wait_finished(client, again["id"], timeout=180)
    assert second["status"] == "DONE", second["errorMessage"]
    updated = docker_client.services.get(app["appName"])
    assert updated.id == service.id
    image = updated.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(f"slipway/{app['appName']}:{again['id']}")
    assert "hello from slipway" in _get(app["port"])


def test_broken_dockerfile_ends_in_error(
    real_server: Server, git_repo: Any, cleanup: list[str]
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("broken"), cleanup)
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 120)
    assert done["status"] == "ERROR"
    assert "3" in done["errorMessage"] and "build" in done["errorMessage"].lower()
    assert done["application"]["status"] == "ERROR"
    assert [s["outcome"] for s in done["steps"]][-1] == "ERROR"


def test_app_that_never_answers_ends_in_error(
    real_server: Server, git_repo: Any, cleanup: list[str]
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("no-port"), cleanup, healthTimeout=15)
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 120)
    assert done["status"] == "ERROR"
    assert str(app["port"]) in done["errorMessage"]
    assert [s["step"] for s in done["steps"]][-1] == "VERIFY_HEALTH"


def test_clone_of_missing_branch_ends_in_error(
    real_server: Server, git_repo: Any, cleanup: list[str]
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("static-ok"), cleanup, branch="does-not-exist")
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 60)
    assert done["status"] == "ERROR"
    assert "does-not-exist" in done["errorMessage"]
    assert [s["step"] for s in done["steps"]] == ["FETCH_SOURCE"]


def test_python_app_with_a_docker_health_check(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    probe = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/', timeout=2)"
    app = create_git_app(
        real_server,
        git_repo("python-ok"),
        cleanup,
        name="py",
        healthCheckCommand=["python3", "-c", probe],
    )
    # python-ok listens on 8000: point the published port there.
    client(
        "mutation($id: ID!, $p: Int!) { updateApplication(id: $id, input: {ports: "
        "[{publishedPort: $p, targetPort: 8000, publishMode: HOST}]}) { id } }",
        id=app["id"],
        p=app["port"],
    )
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert done["status"] == "DONE", done["errorMessage"]
    assert "hello python" in _get(app["port"])
    spec = docker_client.services.get(app["appName"]).attrs["Spec"]["TaskTemplate"]
    assert spec["ContainerSpec"]["Healthcheck"]["Test"] == ["CMD", "python3", "-c", probe]
    task = next(
        t
        for t in docker_client.services.get(app["appName"]).tasks()
        if t["Status"]["State"] == "running"
    )
    container = docker_client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
