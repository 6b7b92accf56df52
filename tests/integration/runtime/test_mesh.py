"""The routing mesh on the real engine: learned once, INGRESS ports handled as configured,
and VERIFY_HEALTH telling "the port does not route" from "the app does not listen"."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.errors import HealthCheckError, ReleaseError
from app.runtime.mesh import IngressFallback
from app.runtime.swarm import SwarmRuntime
from app.types import CancelToken, PortSpec, PublishMode, ServiceSpec
from tests.integration.runtime.conftest import AppImages
from tests.integration.runtime.helpers import HTTPD, Lines, free_port, host_port

pytestmark = pytest.mark.docker


def _answers(port: int) -> bool:
    """An HTTP answer from 127.0.0.1:port (not a proxy that accepts and closes)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            sock.settimeout(1)
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


@pytest.fixture(scope="module")
def mesh_routes(docker_client: Any, app_images: AppImages) -> Any:
    """The truth, found without Slipway: does an INGRESS port of a service answer here?"""
    port = free_port()
    name = f"slipway-test-mesh-{port}"
    service = docker_client.services.create(
        app_images.static_ok,
        command=list(HTTPD),
        name=name,
        endpoint_spec={"Ports": [{"PublishedPort": port, "TargetPort": 8080}]},
    )
    try:
        deadline = time.monotonic() + 30
        while not any(t["Status"]["State"] == "running" for t in service.tasks()):
            assert time.monotonic() < deadline, "the probe service did not start"
            time.sleep(0.5)
        deadline = time.monotonic() + 10  # time for Swarm to set the port up
        while time.monotonic() < deadline:
            if _answers(port):
                return True
            time.sleep(0.5)
        return False
    finally:
        service.remove()


def _ingress(app_images: AppImages, name: str, *, target: int = 8080) -> ServiceSpec:
    port = PortSpec(published_port=free_port(), target_port=target)
    return ServiceSpec(
        name=name, image=app_images.static_ok, command=HTTPD, ports=(port,), health_check_path="/"
    )


def _runtime(docker_client: Any, mode: IngressFallback) -> SwarmRuntime:
    return SwarmRuntime(docker_client, poll_interval=0.25, ingress_fallback=mode)


def test_detection_matches_the_engine_and_host_fallback_deploys(
    docker_client: Any,
    app_images: AppImages,
    service_name: Callable[[], str],
    mesh_routes: bool,
) -> None:
    runtime = _runtime(docker_client, IngressFallback.HOST)
    assert runtime.mesh_routes() is None, "nothing is known before a deployment"
    spec, log = _ingress(app_images, service_name()), Lines()
    release = runtime.release(spec, log=log)
    runtime.verify(spec, release, timeout=60, log=log, cancel=CancelToken())
    assert runtime.mesh_routes() is mesh_routes, log.text()
    port = spec.ports[0].published_port
    assert _answers(port)
    if mesh_routes:
        assert "routing mesh routes on this engine" in log.text()
        return
    text = log.text()
    assert "the app answers on its container" in text and "does not route" in text, text
    assert f"publishing port(s) {port} of {spec.name} in host mode" in text, text
    assert "as this deployment just found" in text
    published = docker_client.api.inspect_service(spec.name)["Spec"]["EndpointSpec"]["Ports"]
    assert [p["PublishMode"] for p in published] == ["host"]

    # The next deployment on this engine is published in host mode from the start.
    second, log2 = _ingress(app_images, service_name()), Lines()
    started = time.monotonic()
    release2 = runtime.release(second, log=log2)
    runtime.verify(second, release2, timeout=60, log=log2, cancel=CancelToken())
    assert "as found earlier" in log2.text(), log2.text()
    assert "the app answers on its container" not in log2.text(), "no second detection"
    assert release2.ports is not None and release2.ports[0].publish_mode is PublishMode.HOST
    assert _answers(second.ports[0].published_port)
    assert time.monotonic() - started < 30


def test_refuse_mode_fails_with_the_reason_and_the_fix(
    docker_client: Any,
    app_images: AppImages,
    service_name: Callable[[], str],
    mesh_routes: bool,
) -> None:
    if mesh_routes:
        pytest.skip("this engine's routing mesh routes: nothing to refuse")
    runtime = _runtime(docker_client, IngressFallback.REFUSE)
    spec, log = _ingress(app_images, service_name()), Lines()
    release = runtime.release(spec, log=log)
    with pytest.raises(HealthCheckError) as first:
        runtime.verify(spec, release, timeout=60, log=log, cancel=CancelToken())
    assert "does not route" in str(first.value) and "publishMode: HOST" in str(first.value)
    assert runtime.mesh_routes() is False

    # Known now: the next one is refused before anything is created.
    second = _ingress(app_images, service_name())
    with pytest.raises(ReleaseError) as refused:
        runtime.release(second, log=Lines())
    message = str(refused.value)
    assert f"port(s) {second.ports[0].published_port}" in message
    assert "routing mesh does not route" in message and "publishMode: HOST" in message
    assert not docker_client.api.services(filters={"name": second.name})


def test_off_mode_says_the_app_answers_but_the_port_does_not_route(
    docker_client: Any,
    app_images: AppImages,
    service_name: Callable[[], str],
    mesh_routes: bool,
) -> None:
    if mesh_routes:
        pytest.skip("this engine's routing mesh routes")
    runtime = _runtime(docker_client, IngressFallback.OFF)
    spec, log = _ingress(app_images, service_name()), Lines()
    release = runtime.release(spec, log=log)
    with pytest.raises(HealthCheckError) as exc:
        runtime.verify(spec, release, timeout=12, log=log, cancel=CancelToken())
    message = str(exc.value)
    assert "the app answers on its container" in message, message
    assert "the published port does not route (Swarm's routing mesh)" in message
    assert runtime.mesh_routes() is None, "off: nothing is concluded"
    published = docker_client.api.inspect_service(spec.name)["Spec"]["EndpointSpec"]["Ports"]
    assert [p["PublishMode"] for p in published] == ["ingress"]


@pytest.mark.parametrize("mode", [PublishMode.HOST, PublishMode.INGRESS])
def test_an_app_listening_on_another_port_is_told_apart(
    docker_client: Any,
    app_images: AppImages,
    service_name: Callable[[], str],
    mode: PublishMode,
) -> None:
    """static-ok listens on 8080; the application says targetPort 9000."""
    runtime = _runtime(docker_client, IngressFallback.HOST)
    port = host_port(9000) if mode is PublishMode.HOST else PortSpec(free_port(), 9000)
    spec = ServiceSpec(
        name=service_name(), image=app_images.static_ok, command=HTTPD, ports=(port,)
    )
    log = Lines()
    release = runtime.release(spec, log=log)
    with pytest.raises(HealthCheckError) as exc:
        runtime.verify(spec, release, timeout=12, log=log, cancel=CancelToken())
    message = str(exc.value)
    assert "the app does not listen on targetPort 9000" in message, message
    assert "refused the connection" in message
    assert "does not route" not in message
