"""Pulling from a real registry that requires basic auth, through the real engine."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import Cancelled, SourceError, SourceNetworkError
from app.runtime.swarm import SwarmRuntime
from app.types import CancelToken, RegistryAuth, ServiceSpec
from tests.integration.runtime.helpers import SLEEP, Lines
from tests.support.auth_registry import (
    BASE_IMAGE,
    AuthRegistry,
    push_test_image,
    remove_local,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def pushed(registry: AuthRegistry, docker_client: Any) -> Iterator[str]:
    """The digest of the test image pushed as ``registry.ref("1")``."""
    digest = push_test_image(docker_client, registry)
    yield digest
    remove_local(docker_client, registry.ref())


@pytest.fixture
def fresh(registry: AuthRegistry, pushed: str, docker_client: Any) -> str:
    """The pushed reference, with no local copy left: the pull must go to the registry."""
    remove_local(docker_client, registry.ref())
    return registry.ref()


def _auth(registry: AuthRegistry, password: str | None = None) -> RegistryAuth:
    return RegistryAuth(
        username=registry.username, password=password or registry.password, registry=registry.addr
    )


def test_pull_with_credentials_pins_the_pushed_digest(
    runtime: SwarmRuntime, registry: AuthRegistry, pushed: str, fresh: str, log: Lines
) -> None:
    pulled = runtime.pull(fresh, auth=_auth(registry), log=log, cancel=CancelToken())
    repo = f"{registry.addr}/slipway-test/app"
    assert pulled.ref == f"{repo}@{pushed}"
    assert pulled.digest == pushed
    assert pulled.image_id.startswith("sha256:")
    assert "Downloaded newer image" in log.text() or "Pull complete" in log.text()
    assert registry.password not in log.text()


def test_a_digest_reference_is_pulled_as_it_is(
    runtime: SwarmRuntime, registry: AuthRegistry, pushed: str, fresh: str, log: Lines
) -> None:
    by_digest = f"{registry.addr}/slipway-test/app@{pushed}"
    pulled = runtime.pull(by_digest, auth=_auth(registry), log=log, cancel=CancelToken())
    assert pulled.ref == by_digest
    assert pulled.digest == pushed


def test_wrong_password_is_refused_without_showing_it(
    runtime: SwarmRuntime, registry: AuthRegistry, fresh: str, log: Lines
) -> None:
    wrong = "wrong-" + registry.password[::-1]
    with pytest.raises(SourceError) as caught:
        runtime.pull(fresh, auth=_auth(registry, wrong), log=log, cancel=CancelToken())
    message = str(caught.value)
    assert not isinstance(caught.value, SourceNetworkError)
    assert f"registry {registry.addr} refused the credentials for user 'deployer'" in message
    assert wrong not in message and wrong not in log.text()
    assert registry.password not in message


def test_no_credentials_says_authentication_is_required(
    runtime: SwarmRuntime, registry: AuthRegistry, fresh: str, log: Lines
) -> None:
    with pytest.raises(SourceError) as caught:
        runtime.pull(fresh, auth=None, log=log, cancel=CancelToken())
    assert f"registry {registry.addr} requires authentication" in str(caught.value)
    assert "registryUsername" in str(caught.value)


def test_missing_tag_is_not_found(
    runtime: SwarmRuntime, registry: AuthRegistry, pushed: str, log: Lines
) -> None:
    missing_ref = registry.ref("no-such-tag")
    with pytest.raises(SourceError) as caught:
        runtime.pull(missing_ref, auth=_auth(registry), log=log, cancel=CancelToken())
    assert f"image {missing_ref} not found" in str(caught.value)
    assert not isinstance(caught.value, SourceNetworkError)


def test_unreachable_registry_is_a_network_error(
    runtime: SwarmRuntime, log: Lines, tmp_path: Path
) -> None:
    from tests.integration.runtime.helpers import free_port

    addr = f"127.0.0.1:{free_port()}"  # nothing listens there
    auth = RegistryAuth(username="u", password="pw-not-shown-123", registry=addr)
    with pytest.raises(SourceNetworkError) as caught:
        runtime.pull(f"{addr}/x/app:1", auth=auth, log=log, cancel=CancelToken())
    assert f"cannot reach registry {addr}" in str(caught.value)
    assert "pw-not-shown-123" not in str(caught.value)


def test_a_local_only_image_is_pinned_by_its_id_without_a_pull(
    runtime: SwarmRuntime, docker_client: Any, log: Lines
) -> None:
    image = docker_client.images.get(BASE_IMAGE)
    if image.attrs.get("RepoDigests"):
        pytest.skip(f"{BASE_IMAGE} came from a registry on this engine; it is not local-only")
    pulled = runtime.pull(BASE_IMAGE, auth=None, log=log, cancel=CancelToken())
    assert pulled.ref == image.id and pulled.digest is None
    assert "Pulling" not in log.text()


def test_cancel_stops_a_pull(
    runtime: SwarmRuntime, registry: AuthRegistry, fresh: str, log: Lines
) -> None:
    cancel = CancelToken()
    cancel.cancel("stop")
    with pytest.raises(Cancelled):
        runtime.pull(fresh, auth=_auth(registry), log=log, cancel=cancel)


def test_swarm_pulls_with_the_credentials_of_the_release(
    runtime: SwarmRuntime,
    registry: AuthRegistry,
    pushed: str,
    fresh: str,
    docker_client: Any,
    service_name: Any,
    log: Lines,
) -> None:
    """No local copy: the node must pull with the X-Registry-Auth the release sent.

    Only the create/update requests carry the credentials; the shared client's other
    requests do not, and the inspected spec and labels never contain the password.
    """
    auth = _auth(registry)
    image = f"{registry.addr}/slipway-test/app@{pushed}"
    spec = ServiceSpec(name=service_name(), image=image, command=SLEEP, registry_auth=auth)
    headers: list[tuple[str, str | None]] = []

    def spy(response: Any, *_: Any, **__: Any) -> None:
        request = response.request
        headers.append(
            (f"{request.method} {request.path_url}", request.headers.get("X-Registry-Auth"))
        )

    docker_client.api.hooks.setdefault("response", []).append(spy)
    try:
        runtime.release(spec, log=log)
        _wait_running(docker_client, spec.name)
        runtime.release(spec, log=log)  # an update in place, with the credentials again
    finally:
        docker_client.api.hooks["response"].remove(spy)
    carried = {what.split("?")[0].rsplit("/", 1)[-1] for what, h in headers if h}
    assert carried == {"create", "update"}, headers
    sent = [json.loads(base64.urlsafe_b64decode(h)) for _, h in headers if h]
    assert all(s["username"] == "deployer" and s["serveraddress"] == registry.addr for s in sent)
    inspected = docker_client.api.inspect_service(spec.name)
    assert inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image
    assert registry.password not in json.dumps(inspected)
    assert registry.password not in log.text()


def _wait_running(docker_client: Any, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        tasks = docker_client.api.tasks(filters={"service": name})
        if any(t["Status"]["State"] == "running" for t in tasks):
            return
        states = [f"{t['Status']['State']}: {t['Status'].get('Err', '')}" for t in tasks]
        assert time.monotonic() < deadline, f"the service's task never ran: {states}"
        time.sleep(0.25)
