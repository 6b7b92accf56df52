"""SwarmRuntime.verify against a real engine: every way a release fails is an error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from app.errors import Cancelled, HealthCheckError
from app.runtime.swarm import SwarmRuntime
from app.types import CancelToken, HealthCheckSpec, ServiceSpec
from tests.integration.runtime.conftest import AppImages
from tests.integration.runtime.helpers import HTTPD, Lines, host_port

pytestmark = pytest.mark.docker


def test_app_not_answering_on_its_port_times_out_naming_the_port(
    runtime: SwarmRuntime, app_images: AppImages, service_name: Callable[[], str], log: Lines
) -> None:
    spec = ServiceSpec(
        name=service_name(), image=app_images.no_port, ports=(host_port(),), endpoint_mode="dnsrr"
    )
    release = runtime.release(spec, log=log)
    started = time.monotonic()
    with pytest.raises(HealthCheckError) as caught:
        runtime.verify(spec, release, timeout=6, log=log, cancel=CancelToken())
    assert time.monotonic() - started < 10
    port = spec.ports[0].published_port
    message = str(caught.value)
    assert f"did not become healthy within 6s: port {port} on 127.0.0.1 does not answer" in message
    assert "running" in log.text()


def test_crash_loop_fails_fast_with_the_task_error(
    runtime: SwarmRuntime, app_images: AppImages, service_name: Callable[[], str], log: Lines
) -> None:
    spec = ServiceSpec(
        name=service_name(),
        image=app_images.static_ok,
        command=("sh", "-c", "echo booting with $API_TOKEN; echo giving up >&2; exit 1"),
        env={"API_TOKEN": "s3cret-token-value"},
        endpoint_mode="dnsrr",
    )
    release = runtime.release(spec, log=log)
    started = time.monotonic()
    with pytest.raises(HealthCheckError) as caught:
        runtime.verify(spec, release, timeout=60, log=log, cancel=CancelToken())
    assert time.monotonic() - started < 20
    message = str(caught.value)
    assert "keeps failing" in message and "non-zero exit (1)" in message
    assert "giving up" in message  # the container's last log lines
    assert "booting with ***" in message and "s3cret-token-value" not in message
    assert "failed: task: non-zero exit (1)" in log.text()


def test_failing_docker_health_check_is_an_error(
    runtime: SwarmRuntime, app_images: AppImages, service_name: Callable[[], str], log: Lines
) -> None:
    spec = ServiceSpec(
        name=service_name(),
        image=app_images.static_ok,
        command=HTTPD,
        health_check=HealthCheckSpec(
            test=("CMD-SHELL", "echo not ready; exit 1"), interval_s=0.5, retries=1
        ),
        endpoint_mode="dnsrr",
    )
    release = runtime.release(spec, log=log)
    started = time.monotonic()
    with pytest.raises(HealthCheckError, match=r"health check(: | is unhealthy )not ready"):
        runtime.verify(spec, release, timeout=15, log=log, cancel=CancelToken())
    assert time.monotonic() - started < 17
    assert "(container health: unhealthy)" in log.text()


def test_http_path_that_is_not_ok_is_an_error(
    runtime: SwarmRuntime, app_images: AppImages, service_name: Callable[[], str], log: Lines
) -> None:
    spec = ServiceSpec(
        name=service_name(),
        image=app_images.static_ok,
        command=HTTPD,
        ports=(host_port(),),
        endpoint_mode="dnsrr",
        health_check_path="/missing",
    )
    release = runtime.release(spec, log=log)
    with pytest.raises(HealthCheckError, match="answered HTTP 404, expected 2xx or 3xx"):
        runtime.verify(spec, release, timeout=4, log=log, cancel=CancelToken())


def test_cancel_while_verifying_stops_promptly(
    runtime: SwarmRuntime, app_images: AppImages, service_name: Callable[[], str], log: Lines
) -> None:
    spec = ServiceSpec(
        name=service_name(), image=app_images.no_port, ports=(host_port(),), endpoint_mode="dnsrr"
    )
    release = runtime.release(spec, log=log)
    cancel = CancelToken()
    timer = threading.Timer(1.0, cancel.cancel, kwargs={"reason": "cancelled by test"})
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled, match="cancelled by test"):
            runtime.verify(spec, release, timeout=60, log=log, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3


def test_swarm_rollback_of_a_failed_update_is_an_error(
    docker_client: object,
    runtime: SwarmRuntime,
    app_images: AppImages,
    service_name: Callable[[], str],
    log: Lines,
) -> None:
    healthy = ServiceSpec(
        name=service_name(),
        image=app_images.static_ok,
        command=HTTPD,
        ports=(host_port(),),
        endpoint_mode="dnsrr",
        health_check_path="/health",
    )
    runtime.verify(
        healthy, runtime.release(healthy, log=log), timeout=30, log=log, cancel=CancelToken()
    )
    crashing = ServiceSpec(
        name=healthy.name,
        image=app_images.static_ok_v2,
        command=("sh", "-c", "echo cannot start >&2; exit 1"),
        ports=healthy.ports,
        endpoint_mode="dnsrr",
        health_check_path="/health",
    )
    update = runtime.release(crashing, log=log)
    with pytest.raises(HealthCheckError) as caught:
        runtime.verify(crashing, update, timeout=60, log=log, cancel=CancelToken())
    message = str(caught.value)
    assert "rolled the update back" in message or "keeps failing" in message

    # The failed attempt's tasks (same image, still in the history) do not count
    # against the next release, nor for it.
    fixed = replace(crashing, command=HTTPD)
    release = runtime.release(fixed, log=log)
    runtime.verify(fixed, release, timeout=30, log=log, cancel=CancelToken())
