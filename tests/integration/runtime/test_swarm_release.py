"""SwarmRuntime against a real engine: services that come up, updates in place, the spec."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.errors import ReleaseError
from app.runtime.swarm import SwarmRuntime
from app.types import CancelToken, HealthCheckSpec, LogStream, MountSpec, ServiceSpec
from tests.integration.runtime.conftest import AppImages
from tests.integration.runtime.helpers import HTTPD, SLEEP, Lines, host_port

pytestmark = pytest.mark.docker

WGET_HEALTH = HealthCheckSpec(
    test=("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"),
    interval_s=1,
    timeout_s=2,
    retries=3,
)


def get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def static_spec(name: str, image: str, **changes: Any) -> ServiceSpec:
    defaults: dict[str, Any] = {
        "ports": (host_port(),),
        "endpoint_mode": "dnsrr",
        "health_check_path": "/health",
        "command": HTTPD,
    }
    return ServiceSpec(name=name, image=image, **{**defaults, **changes})


def running_task_ids(client: Any, service_id: str) -> set[str]:
    tasks = client.api.tasks(filters={"service": service_id, "desired-state": "running"})
    return {t["ID"] for t in tasks if t["Status"]["State"] == "running"}


def test_create_then_update_in_place(
    docker_client: Any,
    runtime: SwarmRuntime,
    app_images: AppImages,
    service_name: Callable[[], str],
    log: Lines,
) -> None:
    spec = static_spec(service_name(), app_images.static_ok, health_check=WGET_HEALTH)
    first = runtime.release(spec, log=log)
    assert first.created and first.previous_image is None
    runtime.verify(spec, first, timeout=30, log=log, cancel=CancelToken())
    port = spec.ports[0].published_port
    assert get(port).strip() == "hello from slipway"
    assert f"creating service {spec.name} with image {app_images.static_ok}" in log.text()
    assert (LogStream.SYSTEM, f"service {spec.name} is healthy") in log.lines

    v2 = static_spec(spec.name, app_images.static_ok_v2, ports=spec.ports)
    second = runtime.release(v2, log=log)
    assert (second.service_id, second.created) == (first.service_id, False)
    assert second.previous_image == app_images.static_ok
    runtime.verify(v2, second, timeout=30, log=log, cancel=CancelToken())
    assert f"image {app_images.static_ok} -> {app_images.static_ok_v2}" in log.text()
    assert get(port).strip() == "hello from slipway"
    # The whole spec was replaced: the health check the first release had is gone.
    inspected = docker_client.api.inspect_service(second.service_id)["Spec"]
    assert "Healthcheck" not in inspected["TaskTemplate"]["ContainerSpec"]


def test_redeploy_of_the_same_image_restarts_the_tasks(
    docker_client: Any,
    runtime: SwarmRuntime,
    app_images: AppImages,
    service_name: Callable[[], str],
    log: Lines,
) -> None:
    spec = static_spec(service_name(), app_images.static_ok)
    first = runtime.release(spec, log=log)
    runtime.verify(spec, first, timeout=30, log=log, cancel=CancelToken())
    before = running_task_ids(docker_client, first.service_id)

    again = runtime.release(spec, log=log)
    assert before <= again.previous_tasks
    template = docker_client.api.inspect_service(first.service_id)["Spec"]["TaskTemplate"]
    assert template["ForceUpdate"] == 1
    runtime.verify(spec, again, timeout=30, log=log, cancel=CancelToken())
    after = running_task_ids(docker_client, first.service_id)
    assert after and not after & before
    assert "unchanged, restarting its tasks" in log.text()


def test_env_mounts_resources_and_labels_reach_the_service(
    docker_client: Any,
    runtime: SwarmRuntime,
    app_images: AppImages,
    service_name: Callable[[], str],
    log: Lines,
    tmp_path: Path,
) -> None:
    volume = f"{service_name()}-data"
    spec = ServiceSpec(
        name=service_name(),
        image=app_images.no_port,
        command=SLEEP,
        env={"GREETING": "hello world", "API_TOKEN": "s3cret-token-value"},
        mounts=(
            MountSpec(type="bind", source=str(tmp_path), target="/host", read_only=True),
            MountSpec(type="volume", source=volume, target="/data"),
        ),
        cpu_limit=0.5,
        memory_limit=64 * 1024 * 1024,
        labels={"team": "core"},
        endpoint_mode="dnsrr",
    )
    release = runtime.release(spec, log=log)
    try:
        runtime.verify(spec, release, timeout=30, log=log, cancel=CancelToken())
        inspected = docker_client.api.inspect_service(release.service_id)["Spec"]
        container = inspected["TaskTemplate"]["ContainerSpec"]
        assert sorted(container["Env"]) == ["API_TOKEN=s3cret-token-value", "GREETING=hello world"]
        mounts = {m["Target"]: m for m in container["Mounts"]}
        assert mounts["/host"]["Source"] == str(tmp_path) and mounts["/host"]["ReadOnly"]
        assert (mounts["/data"]["Type"], mounts["/data"]["Source"]) == ("volume", volume)
        limits = inspected["TaskTemplate"]["Resources"]["Limits"]
        assert limits == {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024}
        assert inspected["Labels"] == {"team": "core", "slipway.managed": "true"}
        assert "s3cret-token-value" not in str(inspected["Labels"]) + log.text()
        assert inspected["EndpointSpec"]["Mode"] == "dnsrr"
        assert container["Command"] == list(SLEEP)
    finally:
        runtime.remove(spec.name)
        _remove_volume(docker_client, volume)


def _remove_volume(client: Any, name: str) -> None:
    # The task's container may still be going away; the volume is freed after it.
    for _ in range(40):
        try:
            client.volumes.get(name).remove(force=True)
            return
        except Exception:  # noqa: BLE001 - retried, then left for the engine's pruning
            time.sleep(0.5)


def test_docker_refusal_is_a_release_error(
    runtime: SwarmRuntime, app_images: AppImages, log: Lines
) -> None:
    spec = ServiceSpec(name="Not A Valid Name!", image=app_images.static_ok)
    with pytest.raises(ReleaseError, match="Docker refused to create service Not A Valid Name!"):
        runtime.release(spec, log=log)


def test_remove_ignores_a_missing_service(runtime: SwarmRuntime) -> None:
    runtime.remove("slipway-test-does-not-exist")
