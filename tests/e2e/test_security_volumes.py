"""A named volume needs only a DEPLOY key, so it must not reach another system's data:
the volume of Slipway's own data dir or database under docker compose, or any volume a
container Slipway did not make is using, is refused at release (real engine, real HTTP)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import DEPLOY
from tests.e2e.support_security import CREATE, answers_quickly

IMAGE = "slipway-test/local-only:vol"  # no registry digest: released by id, never pulled


@pytest.fixture
def local_image(docker_client: Any) -> Iterator[str]:
    docker_client.images.get("busybox:1.36").tag(IMAGE)
    yield IMAGE
    docker_client.images.remove(IMAGE)


@pytest.fixture
def volumes(docker_client: Any) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        for container in docker_client.containers.list(all=True, filters={"volume": name}):
            container.remove(force=True)
        docker_client.volumes.get(name).remove(force=True)


def _deploy_with_volume(server: Server, image: str, volume: str, cleanup: list[str]) -> str:
    client = server.client(Scope.DEPLOY)
    app = client(
        CREATE,
        input={
            "name": "vol",
            "sourceType": "DOCKER",
            "dockerImage": image,
            "command": ["sleep", "3600"],
            "mounts": [{"type": "volume", "source": volume, "target": "/stolen"}],
        },
    )["createApplication"]
    cleanup.append(app["appName"])
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "ERROR", done
    message: str = done["errorMessage"]
    return message


def test_a_compose_projects_volume_is_not_mounted(
    real_server: Server,
    docker_client: Any,
    local_image: str,
    volumes: list[str],
    cleanup: list[str],
) -> None:
    name = f"docker_slipway-data-{os.urandom(3).hex()}"
    docker_client.volumes.create(
        name,
        labels={"com.docker.compose.project": "docker", "com.docker.compose.volume": "data"},
    )
    volumes.append(name)
    message = _deploy_with_volume(real_server, local_image, name, cleanup)
    assert "made by docker compose" in message and name in message
    services = docker_client.services.list(filters={"name": cleanup[-1]})
    assert services == [], "nothing was released"
    answers_quickly(real_server)


def test_a_volume_in_use_by_another_container_is_not_mounted(
    real_server: Server,
    docker_client: Any,
    local_image: str,
    volumes: list[str],
    cleanup: list[str],
) -> None:
    name = f"pg-data-{os.urandom(3).hex()}"
    docker_client.volumes.create(name)
    volumes.append(name)
    docker_client.containers.create("busybox:1.36", "true", volumes={name: {"bind": "/d"}})
    message = _deploy_with_volume(real_server, local_image, name, cleanup)
    assert "which Slipway did not make" in message and name in message
    assert docker_client.services.list(filters={"name": cleanup[-1]}) == []
