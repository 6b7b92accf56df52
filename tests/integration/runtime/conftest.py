"""Fixtures for the Swarm runtime against a real engine: test images, names, free ports."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from docker.errors import NotFound

from app.runtime.swarm import SwarmRuntime
from tests.conftest import APPS
from tests.integration.runtime.helpers import Lines


@dataclass(frozen=True)
class AppImages:
    static_ok: str  # httpd on 8080 serving "hello from slipway", /health -> ok
    static_ok_v2: str  # the same image under another tag: a new deployment's tag
    no_port: str  # sleeps forever, answers nothing


@pytest.fixture(scope="session")
def app_images(docker_client: Any) -> Iterator[AppImages]:
    """Build the test apps once per session; remove the tags afterwards."""
    run = uuid.uuid4().hex[:8]
    tags = {
        "static_ok": f"slipway-test/static-ok:{run}",
        "static_ok_v2": f"slipway-test/static-ok:{run}-v2",
        "no_port": f"slipway-test/no-port:{run}",
    }
    image, _ = docker_client.images.build(path=str(APPS / "static-ok"), tag=tags["static_ok"])
    image.tag("slipway-test/static-ok", f"{run}-v2")
    docker_client.images.build(path=str(APPS / "no-port"), tag=tags["no_port"])
    yield AppImages(**tags)
    for tag in tags.values():
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - a tag still used by a dying task stays; harmless
            pass


@pytest.fixture
def service_name(docker_client: Any) -> Iterator[Callable[[], str]]:
    """Factory of ``slipway-test-<random>`` names; every such service is removed after."""
    names: list[str] = []

    def make() -> str:
        names.append(f"slipway-test-{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    for name in names:
        try:
            docker_client.api.remove_service(name)
        except NotFound:
            pass


@pytest.fixture
def runtime(docker_client: Any) -> SwarmRuntime:
    return SwarmRuntime(docker_client, poll_interval=0.25)


@pytest.fixture
def log() -> Lines:
    return Lines()
