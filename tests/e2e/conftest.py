"""Servers for end-to-end tests: real HTTP and WebSocket, fake or real adapters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.fake import FakeBuilder
from app.engine.adapters import real_adapters
from app.engine.context import Adapters
from app.registry.fake_push import FakePusher
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType, Scope
from tests.e2e.harness import Client, Server, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOYMENT

TERMINAL = {"DONE", "ERROR", "CANCELLED"}


class Fakes:
    def __init__(self, source: Path) -> None:
        self.git = FakeGitClient(source)
        self.builder = FakeBuilder(lines=3)
        self.runtime = FakeRuntime()
        self.pusher = FakePusher()

    def adapters(self, _: Settings) -> Adapters:
        return Adapters(
            git=self.git,
            builders={BuildType.DOCKERFILE: self.builder},
            runtime=self.runtime,
            pusher=self.pusher,
        )


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM busybox:1.36\n")
    return Fakes(src)


@pytest.fixture
def real_server(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    """A server deploying for real: git, Docker builds, Swarm (dnsrr and host ports here)."""
    with running_server(
        tmp_path / "data", real_adapters, endpoint_mode="dnsrr", health_timeout=60
    ) as server:
        yield server


@pytest.fixture
def fake_server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters) as server:
        yield server


def wait_finished(client: Client, deployment_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        dep: dict[str, Any] = client(DEPLOYMENT, id=deployment_id)["deployment"]
        if dep["status"] in TERMINAL:
            return dep
        assert time.monotonic() < deadline, f"deployment still {dep['status']} after {timeout}s"
        time.sleep(0.2)


@pytest.fixture
def cleanup(docker_client: Any) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        for service in docker_client.services.list(filters={"name": name}):
            service.remove()
    # one name per query: several label filters must all match (AND), so a list of
    # names would match no container and nothing would be waited for. Only running
    # containers are waited for: the images go by force, which stopped ones do not stop,
    # and Swarm removes the stopped ones of a removed service in its own time
    deadline = time.monotonic() + 30
    for name in names:
        label = f"com.docker.swarm.service.name={name}"
        while docker_client.containers.list(filters={"label": label}):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    for name in names:
        for image in docker_client.images.list(name=f"slipway/{name}"):
            docker_client.images.remove(image.id, force=True)


def create_git_app(
    server: Server, repo: Path, cleanup: list[str], *, name: str = "web", **extra: Any
) -> dict[str, Any]:
    """A ``file://`` application, which only an ADMIN key may set; tests deploy it with DEPLOY."""
    port = free_port()
    app = server.client(Scope.ADMIN)(
        CREATE_APP,
        input={
            "name": name,
            "sourceType": "GIT",
            "repository": f"file://{repo}",
            "branch": "main",
            "ports": [{"publishedPort": port, "targetPort": 8080, "publishMode": "HOST"}],
            **extra,
        },
    )["createApplication"]
    cleanup.append(app["appName"])
    app["port"] = port
    return app


GIT_APP: Callable[..., dict[str, Any]] = lambda **kw: {  # noqa: E731
    "name": "web",
    "sourceType": "GIT",
    "repository": "https://example.invalid/acme/web.git",
    "branch": "main",
    **kw,
}
