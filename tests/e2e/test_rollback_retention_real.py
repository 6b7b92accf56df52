"""Rollback points in a real registry (the htpasswd one of scripts/services, deletes on):
each DONE deployment's copy pushed as :rollback-<id>, a rollback of an earlier one, and
retention (clearDeployments) deleting the pruned points' tags by digest and their local
images, while everything of the running version stays."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import DEPLOY
from tests.e2e.support_registries import CREATE as CREATE_REGISTRY
from tests.e2e.support_registries import UPDATE_APP
from tests.support.auth_registry import AuthRegistry
from tests.support.random_images import MANIFEST_V2, registry_tags
from tests.support.versions import HEALTH_PATH, VersionedRepo

pytestmark = [pytest.mark.docker, pytest.mark.registry]

PREFIX = "slipway-rollback-e2e"
ROLLBACK = "mutation($id: ID!) { rollbackDeployment(deploymentId: $id) { id } }"
CLEAR = "mutation($id: ID!) { clearDeployments(applicationId: $id) }"


def _manifest(addr: str, path: str, ref: str, creds: tuple[str, str]) -> int:
    res = httpx.head(
        f"http://{addr}/v2/{path}/manifests/{ref}",
        auth=creds,
        headers={"Accept": MANIFEST_V2},
        timeout=10,
    )
    return res.status_code


def _local(docker_client: Any, ref: str) -> bool:
    try:
        docker_client.images.get(ref)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        return False
    return True


def test_rollback_copies_are_pushed_and_retention_deletes_them_by_digest(
    real_server: Server,
    shared_auth_registry: AuthRegistry,
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,
) -> None:
    reg = shared_auth_registry
    creds = (reg.username, reg.password)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(real_server, repo.bare, cleanup, healthCheckPath=HEALTH_PATH)
    name = app["appName"]
    registry = real_server.client(Scope.ADMIN)(
        CREATE_REGISTRY,
        input={
            "name": f"backup-{uuid.uuid4().hex[:6]}",
            "url": reg.addr,
            "username": reg.username,
            "password": reg.password,
            "imagePrefix": PREFIX,
        },
    )["createRegistry"]
    client = real_server.client(Scope.DEPLOY)
    client(UPDATE_APP, id=app["id"], input={"rollbackRegistryId": registry["id"]})

    done = []
    for number in ("one", "two", "three"):
        if number != "one":
            repo.commit(f"version {number}")
        dep = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
        assert dep["status"] == "DONE", dep["errorMessage"]
        assert [s["step"] for s in dep["steps"]][-2:] == ["VERIFY_HEALTH", "ROLLBACK_COPY"]
        done.append(dep)
    path = f"{PREFIX}/{name}"
    assert sorted(registry_tags(reg.addr, path, creds)) == sorted(
        f"rollback-{d['id']}" for d in done
    )
    copy_lines = [m["message"] for m in done[0]["logs"] if m["step"] == "ROLLBACK_COPY"]
    assert any(
        m.startswith(f"Rollback copy pushed: {reg.addr}/{path}:rollback-") for m in copy_lines
    )
    assert reg.password not in json.dumps(done)

    v1 = done[0]
    back = wait_finished(client, client(ROLLBACK, id=v1["id"])["rollbackDeployment"]["id"], 180)
    assert back["status"] == "DONE", back["errorMessage"]
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert res.read().decode() == "version one\n"

    # retention: every finished row goes; the rollback (what runs) keeps v1's image and copy
    assert client(CLEAR, id=app["id"])["clearDeployments"] == 4
    assert _manifest(reg.addr, path, f"rollback-{v1['id']}", creds) == 200
    for dep in done[1:]:
        assert _manifest(reg.addr, path, f"rollback-{dep['id']}", creds) == 404
        assert not _local(docker_client, f"slipway/{name}:{dep['id']}"), dep["id"]
    assert registry_tags(reg.addr, path, creds) == [f"rollback-{v1['id']}"]
    assert _local(docker_client, f"slipway/{name}:{v1['id']}")
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert res.read().decode() == "version one\n"
