"""Automatic restore on the real engine: a new version whose health path answers 500 ends
ERROR, and the version it replaced answers again afterwards."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import DEPLOY
from tests.support.versions import HEALTH_PATH, VersionedRepo

pytestmark = pytest.mark.docker


def _get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
        body: str = res.read().decode()
        return body


def _image(docker_client: Any, name: str) -> str:
    spec = docker_client.services.get(name).attrs["Spec"]
    image: str = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    return image.split("@", 1)[0]


def test_a_version_failing_its_health_path_is_replaced_by_the_previous_one(
    real_server: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(real_server, repo.bare, cleanup, healthCheckPath=HEALTH_PATH)
    assert app["id"]
    v1 = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert v1["status"] == "DONE", v1["errorMessage"]
    repo.commit("version two")
    v2 = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert v2["status"] == "DONE", v2["errorMessage"]
    assert _get(app["port"]) == "version two\n"

    repo.commit("version three", health=500)
    client(
        "mutation($id: ID!) { updateApplication(id: $id, input: {healthTimeout: 30}) { id } }",
        id=app["id"],
    )
    v3 = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 240)
    assert v3["status"] == "ERROR"
    error = v3["errorMessage"]
    assert error.startswith("the new version failed: ") and "HTTP 500" in error, error
    assert f"the previous version (slipway/{app['appName']}:{v2['id']}) was restored" in error
    assert [s["step"] for s in v3["steps"]][-2:] == ["VERIFY_HEALTH", "RESTORE"]
    assert v3["steps"][-1]["outcome"] == "DONE"
    messages = "\n".join(line["message"] for line in v3["logs"])
    assert "restoring the previous release" in messages
    assert "the previous version answers again" in messages
    # What the test sees for itself: the service runs v2's image and the port says so.
    assert _image(docker_client, app["appName"]) == f"slipway/{app['appName']}:{v2['id']}"
    assert _get(app["port"]) == "version two\n"
    assert _get(app["port"], HEALTH_PATH) == "version two health 200\n"


def test_restore_on_failure_off_leaves_the_failed_version(
    real_server: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        real_server,
        repo.bare,
        cleanup,
        healthCheckPath=HEALTH_PATH,
        restoreOnFailure=False,
        healthTimeout=30,
    )
    v1 = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert v1["status"] == "DONE", v1["errorMessage"]
    repo.commit("version two", health=500)
    v2 = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert v2["status"] == "ERROR" and "HTTP 500" in v2["errorMessage"]
    assert "restored" not in v2["errorMessage"]
    assert [s["step"] for s in v2["steps"]][-1] == "VERIFY_HEALTH"
    assert _image(docker_client, app["appName"]) == f"slipway/{app['appName']}:{v2['id']}"
    assert _get(app["port"]) == "version two\n"
