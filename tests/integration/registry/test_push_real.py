"""DockerPusher through the real engine to the real registries of scripts/services: the open
one (127.0.0.1:5000) and the htpasswd one (127.0.0.1:5001), plus a port where nothing
listens. Every image carries a layer of fresh random bytes, so each push uploads it."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import Cancelled, RegistryAuthError, RegistryNetworkError
from app.registry.push import DockerPusher
from app.types import CancelToken, LogStream, RegistryAuth, RegistryTarget
from tests.support.auth_registry import AuthRegistry
from tests.support.fake_servers import failing_registry, refusing_port
from tests.support.random_images import (
    manifest_digest,
    random_image,
    registry_tags,
    remove_image,
)
from tests.support.recorder import Recorder

pytestmark = [pytest.mark.docker, pytest.mark.registry]
INTERVAL = 1.0  # the pushers' throttle here: a 16 MB push lasts a second or so
MB = 1_000_000


def open_target(addr: str) -> RegistryTarget:
    return RegistryTarget(
        id="r1", name="open", host=addr, image_prefix="slipway-test", secure=False
    )


def auth_target(reg: AuthRegistry, password: str | None = None) -> RegistryTarget:
    auth = RegistryAuth(username=reg.username, password=password or reg.password, registry=reg.addr)
    return RegistryTarget(
        id="r2",
        name="private",
        host=reg.addr,
        image_prefix="slipway-test",
        auth=auth,
        secure=False,
    )


@pytest.fixture
def image(docker_client: Any, tmp_path: Path) -> Iterator[str]:
    """A local image with a fresh 16 MB random layer on top of busybox."""
    tag = random_image(docker_client, tmp_path / "img", size=16 * MB)
    yield tag
    remove_image(docker_client, tag)


@pytest.fixture
def pusher(docker_client: Any) -> DockerPusher:
    return DockerPusher(docker_client, interval=INTERVAL)


def _app() -> str:
    return f"push-{uuid.uuid4().hex[:8]}"


def test_push_to_the_open_registry_records_the_digest_the_registry_serves(
    pusher: DockerPusher, image: str, registry_addr: str
) -> None:
    target, app, tag = open_target(registry_addr), _app(), "dep1"
    repository = target.repository(app)
    log = Recorder()
    started = time.monotonic()
    pushed = pusher.push(
        image, target=target, repository=repository, tag=tag, log=log, cancel=CancelToken()
    )
    elapsed = time.monotonic() - started
    assert pushed.repository == f"{registry_addr}/slipway-test/{app}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pushed.digest)
    assert pushed.ref == f"{pushed.repository}@{pushed.digest}"
    path = f"slipway-test/{app}"
    assert registry_tags(registry_addr, path) == [tag]
    assert manifest_digest(registry_addr, path, tag) == pushed.digest
    # per layer and throttled: the random layer is "Pushed", with at most one Pushing
    # line per interval (plus the first), never one per progress event
    layers = {m.split(":", 1)[0] for _, m in log.lines if re.match(r"^[0-9a-f]{12}: ", m)}
    assert len(layers) == 2, log.text
    pushing = [m for _, m in log.lines if ": Pushing " in m]
    assert len(pushing) <= 2 * (elapsed / INTERVAL + 1), log.text
    assert any(m.endswith(": Pushed") for _, m in log.lines), log.text
    assert log.lines[-1] == (
        LogStream.SYSTEM,
        f"Pushed {repository}:{tag} ({pushed.digest}); " + log.lines[-1][1].split("; ", 1)[1],
    )
    assert re.search(r"2 layers: [12] pushed, [01] already in the registry$", log.lines[-1][1])


def test_push_with_credentials_to_the_htpasswd_registry(
    pusher: DockerPusher, image: str, shared_auth_registry: AuthRegistry
) -> None:
    reg = shared_auth_registry
    target, app = auth_target(reg), _app()
    log = Recorder()
    pushed = pusher.push(
        image,
        target=target,
        repository=target.repository(app),
        tag="dep2",
        log=log,
        cancel=CancelToken(),
    )
    path, creds = f"slipway-test/{app}", (reg.username, reg.password)
    assert registry_tags(reg.addr, path, creds) == ["dep2"]
    assert manifest_digest(reg.addr, path, "dep2", creds) == pushed.digest
    assert reg.password not in log.text
    config = Path.home() / ".docker" / "config.json"  # no `docker login` state was made
    assert not config.exists() or reg.password not in config.read_text()


def test_a_wrong_password_fails_at_once_naming_the_registry_never_the_password(
    pusher: DockerPusher, image: str, shared_auth_registry: AuthRegistry
) -> None:
    reg = shared_auth_registry
    wrong = "wrong-" + reg.password[::-1]
    target, app = auth_target(reg, wrong), _app()
    log = Recorder()
    started = time.monotonic()
    with pytest.raises(RegistryAuthError) as caught:
        pusher.push(
            image,
            target=target,
            repository=target.repository(app),
            tag="1",
            log=log,
            cancel=CancelToken(),
        )
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert message.startswith(
        f"registry 'private' ({reg.addr}) refused the credentials of user {reg.username!r} "
        f"pushing {reg.addr}/slipway-test/{app}:1: "
    ), message
    assert "unauthorized" in message
    for secret in (wrong, reg.password):
        assert secret not in message and secret not in log.text
    assert registry_tags(reg.addr, f"slipway-test/{app}", (reg.username, reg.password)) == []


def test_no_credentials_for_the_htpasswd_registry_says_to_set_them(
    pusher: DockerPusher, image: str, shared_auth_registry: AuthRegistry
) -> None:
    target = RegistryTarget(id="r3", name="private", host=shared_auth_registry.addr, secure=False)
    with pytest.raises(RegistryAuthError, match="requires credentials to push"):
        pusher.push(
            image,
            target=target,
            repository=target.repository(_app()),
            tag="1",
            log=Recorder(),
            cancel=CancelToken(),
        )


def test_a_registry_where_nothing_listens_is_a_network_error(
    pusher: DockerPusher, image: str
) -> None:
    with refusing_port() as addr, pytest.raises(RegistryNetworkError) as caught:
        auth = RegistryAuth(username="u", password="pw-not-shown-4711", registry=addr)
        target = RegistryTarget(id="r4", name="gone", host=addr, auth=auth, secure=False)
        pusher.push(
            image,
            target=target,
            repository=target.repository("app"),
            tag="1",
            log=Recorder(),
            cancel=CancelToken(),
        )
    message = str(caught.value)
    assert message.startswith(f"cannot reach registry 'gone' ({addr}) to push {addr}/app:1: ")
    assert "connection refused" in message
    assert "pw-not-shown-4711" not in message


def test_cancel_during_a_push_stops_it_within_seconds(
    pusher: DockerPusher, docker_client: Any, tmp_path: Path, registry_addr: str
) -> None:
    """A 96 MB random layer takes the engine seconds to compress and upload; a cancel once
    it is Pushing ends the call at once and the engine abandons the push: the tag never
    appears in the registry, though the whole push would have ended by then."""
    big = random_image(docker_client, tmp_path / "big", size=96 * MB)
    try:
        target, app = open_target(registry_addr), _app()
        cancel = CancelToken()
        log = Recorder()
        outcome: list[BaseException | None] = []

        def push() -> None:
            try:
                pusher.push(
                    big,
                    target=target,
                    repository=target.repository(app),
                    tag="1",
                    log=log,
                    cancel=cancel,
                )
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - the test reads it
                outcome.append(exc)

        thread = threading.Thread(target=push)
        thread.start()
        deadline = time.monotonic() + 60
        while ": Pushing " not in log.text:
            assert thread.is_alive() and time.monotonic() < deadline, log.text
            time.sleep(0.02)
        cancelled_at = time.monotonic()
        cancel.cancel("cancelled by a test")
        thread.join(timeout=10)
        stopped = time.monotonic() - cancelled_at
        assert not thread.is_alive()
        assert stopped < 3, stopped
        assert len(outcome) == 1 and isinstance(outcome[0], Cancelled), outcome
        time.sleep(8)  # longer than the whole push takes here
        assert registry_tags(registry_addr, f"slipway-test/{app}") == []
    finally:
        remove_image(docker_client, big)


def test_a_registry_answering_5xx_is_a_network_error(pusher: DockerPusher, image: str) -> None:
    """The engine says "received unexpected HTTP status: 503 Service Unavailable" when the
    manifest is refused with 503: worth another try, unlike a refusal."""
    with failing_registry(503) as addr:
        target = RegistryTarget(id="r5", name="flaky", host=addr, secure=False)
        with pytest.raises(RegistryNetworkError) as caught:
            pusher.push(
                image,
                target=target,
                repository=target.repository("app"),
                tag="1",
                log=Recorder(),
                cancel=CancelToken(),
            )
    assert str(caught.value) == (
        f"cannot reach registry 'flaky' ({addr}) to push {addr}/app:1: "
        "received unexpected HTTP status: 503 Service Unavailable"
    )


def test_a_registry_answering_403_is_a_refusal(pusher: DockerPusher, image: str) -> None:
    with failing_registry(403) as addr:
        target = RegistryTarget(id="r6", name="strict", host=addr, secure=False)
        with pytest.raises(RegistryAuthError, match="requires credentials to push"):
            pusher.push(
                image,
                target=target,
                repository=target.repository("app"),
                tag="1",
                log=Recorder(),
                cancel=CancelToken(),
            )
