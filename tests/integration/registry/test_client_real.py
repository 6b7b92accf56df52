"""HttpRegistryClient against real distribution registries: the open one and the htpasswd
one of scripts/services (deletes enabled), one started here with deletes disabled, and
loopback servers that are not registries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.errors import RegistryAuthError, RegistryError
from app.registry.client import CHECK_REPOSITORY, HttpRegistryClient
from app.types import RegistryAuth, RegistryTarget
from tests.services import missing
from tests.support.auth_registry import (
    AuthRegistry,
    auth_registry,
    push_test_image,
    registry_binary,
    remove_local,
)
from tests.support.fake_servers import closed_port, plain_http_server, silent_server

pytestmark = pytest.mark.registry
TIMEOUT = 2.0


def target(host: str, user: str | None = None, password: str = "", **kw: Any) -> RegistryTarget:
    auth = RegistryAuth(username=user, password=password, registry=host) if user else None
    return RegistryTarget(id="r", name="r", host=host, auth=auth, secure=False, **kw)


def of(registry: AuthRegistry, password: str | None = None) -> RegistryTarget:
    return target(registry.addr, registry.username, password or registry.password)


@pytest.fixture
def client() -> HttpRegistryClient:
    return HttpRegistryClient(timeout=TIMEOUT)


def test_open_registry_needs_no_login_and_takes_pushes(
    client: HttpRegistryClient, registry_addr: str
) -> None:
    result = client.check(target(registry_addr), repository=f"slipway/{CHECK_REPOSITORY}")
    assert result.ok, result.message
    assert result.message == (
        f"{registry_addr} is a registry; no login needed; push to slipway/slipway-check allowed"
    )


def test_auth_registry_with_good_credentials(
    client: HttpRegistryClient, shared_auth_registry: AuthRegistry
) -> None:
    reg = shared_auth_registry
    result = client.check(of(reg), repository=f"{reg.addr}/slipway/{CHECK_REPOSITORY}")
    assert result.ok, result.message
    assert result.message == (
        f"{reg.addr} is a registry; credentials of user {reg.username!r} accepted; "
        "push to slipway/slipway-check allowed"
    )
    assert reg.password not in result.message


def test_auth_registry_with_a_wrong_password(
    client: HttpRegistryClient, shared_auth_registry: AuthRegistry
) -> None:
    reg = shared_auth_registry
    result = client.check(of(reg, "wrong-" + reg.password), repository=CHECK_REPOSITORY)
    assert not result.ok
    assert result.message == f"credentials refused by {reg.addr} (user {reg.username!r})"
    assert reg.password not in result.message


def test_auth_registry_without_a_user(
    client: HttpRegistryClient, shared_auth_registry: AuthRegistry
) -> None:
    result = client.check(target(shared_auth_registry.addr), repository=CHECK_REPOSITORY)
    assert (result.ok, result.message) == (
        False,
        f"{shared_auth_registry.addr} requires credentials: set username and password",
    )


def test_a_web_server_is_not_a_registry(client: HttpRegistryClient) -> None:
    with plain_http_server() as addr:
        result = client.check(target(addr), repository=CHECK_REPOSITORY)
    assert not result.ok
    assert result.message == (
        f"not a registry (no Docker-Distribution-API-Version header at http://{addr}/v2/, "
        "HTTP 200)"
    )
    assert "html" not in result.message  # the page itself is never quoted


def test_nothing_listening(client: HttpRegistryClient) -> None:
    addr = closed_port()
    result = client.check(target(addr), repository=CHECK_REPOSITORY)
    assert (result.ok, result.message) == (False, f"cannot connect to {addr}: connection refused")


def test_a_server_that_never_answers_times_out(client: HttpRegistryClient) -> None:
    with silent_server() as addr:
        started = time.monotonic()
        result = client.check(target(addr), repository=CHECK_REPOSITORY)
        elapsed = time.monotonic() - started
    assert not result.ok
    assert result.message == f"{addr} did not answer within 2s (GET /v2/)"
    assert TIMEOUT <= elapsed < 3 * TIMEOUT


def test_https_to_a_plain_http_registry_says_so(
    client: HttpRegistryClient, registry_addr: str
) -> None:
    secure = RegistryTarget(id="r", name="r", host=registry_addr, secure=True)
    result = client.check(secure, repository=CHECK_REPOSITORY)
    assert not result.ok
    assert result.message == (
        f"cannot connect to {registry_addr}: the TLS handshake failed (if it serves plain "
        "http, give the URL as http://)"
    )


@pytest.fixture
def pushed(docker_client: Any, shared_auth_registry: AuthRegistry) -> Iterator[tuple[str, str]]:
    """(repository, digest) of busybox pushed to a fresh repository of the htpasswd registry."""
    repository = f"slipway-test/delete-{uuid.uuid4().hex[:8]}"
    digest = push_test_image(docker_client, shared_auth_registry, "1", repository)
    yield repository, digest
    remove_local(docker_client, shared_auth_registry.ref("1", repository))


def _manifest_status(reg: AuthRegistry, repository: str, ref: str) -> int:
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    response = httpx.head(
        f"http://{reg.addr}/v2/{repository}/manifests/{ref}",
        auth=(reg.username, reg.password),
        headers={"Accept": accept},
        timeout=10,
    )
    return response.status_code


def test_delete_by_digest_removes_the_manifest_and_its_tag(
    client: HttpRegistryClient, shared_auth_registry: AuthRegistry, pushed: tuple[str, str]
) -> None:
    reg = shared_auth_registry
    repository, digest = pushed
    assert _manifest_status(reg, repository, "1") == 200
    assert client.delete(of(reg), repository=f"{reg.addr}/{repository}", digest=digest) is True
    assert _manifest_status(reg, repository, digest) == 404
    assert _manifest_status(reg, repository, "1") == 404  # the tag went with it
    assert client.delete(of(reg), repository=repository, digest=digest) is False


def test_delete_with_a_wrong_password_is_refused(
    client: HttpRegistryClient, shared_auth_registry: AuthRegistry, pushed: tuple[str, str]
) -> None:
    reg = shared_auth_registry
    repository, digest = pushed
    with pytest.raises(RegistryAuthError, match="credentials refused") as caught:
        client.delete(of(reg, "nope"), repository=repository, digest=digest)
    assert reg.password not in str(caught.value)
    assert _manifest_status(reg, repository, digest) == 200


def test_delete_on_a_registry_with_deletes_disabled(
    client: HttpRegistryClient, docker_client: Any, tmp_path: Path
) -> None:
    if registry_binary() is None:
        missing("docker-registry (scripts/services installs it)")
    with auth_registry(tmp_path / "no-delete", delete=False) as reg:
        digest = push_test_image(docker_client, reg)
        try:
            with pytest.raises(RegistryError, match="deletes disabled") as caught:
                client.delete(of(reg), repository="slipway-test/app", digest=digest)
            assert "storage.delete.enabled" in str(caught.value)
            assert _manifest_status(reg, "slipway-test/app", digest) == 200
        finally:
            remove_local(docker_client, reg.ref())
