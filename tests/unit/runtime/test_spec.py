"""spec.py: a Slipway ServiceSpec -> the pieces of a Swarm service spec (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ReleaseError
from app.runtime.spec import from_swarm, swarm_service_args
from app.types import HealthCheckSpec, MountSpec, PortSpec, PublishMode, ServiceSpec


def spec(**changes: Any) -> ServiceSpec:
    return ServiceSpec(name="web", image="registry.local/web:abc123", **changes)


def test_container_spec_has_image_command_env_labels() -> None:
    args = swarm_service_args(
        spec(
            command=("httpd", "-f"),
            env={"A": "1", "DATABASE_URL": "postgres://u:secret@db/x"},
            labels={"team": "core"},
        )
    )
    container = args.task_template["ContainerSpec"]
    assert container["Image"] == "registry.local/web:abc123"
    assert container["Command"] == ["httpd", "-f"]
    assert container["Env"] == ["A=1", "DATABASE_URL=postgres://u:secret@db/x"]
    assert container["Labels"] == {"team": "core", "slipway.managed": "true"}


def test_service_labels_are_managed_plus_user_labels_and_never_env() -> None:
    args = swarm_service_args(spec(env={"TOKEN": "s3cret"}, labels={"a": "b"}))
    assert args.labels == {"a": "b", "slipway.managed": "true"}
    assert "s3cret" not in repr(args.labels)
    assert args.as_kwargs()["labels"] == args.labels


def test_empty_env_and_mounts_are_explicit_so_an_update_clears_them() -> None:
    container = swarm_service_args(spec()).task_template["ContainerSpec"]
    assert container["Env"] == [] and container["Mounts"] == []
    assert container["Command"] is None  # the image's CMD
    assert "Healthcheck" not in container


def test_health_check_durations_are_nanoseconds() -> None:
    check = HealthCheckSpec(
        test=("CMD", "wget", "-q", "http://127.0.0.1/"),
        interval_s=5,
        timeout_s=2.5,
        retries=4,
        start_period_s=0.5,
    )
    health = swarm_service_args(spec(health_check=check)).task_template["ContainerSpec"][
        "Healthcheck"
    ]
    assert health == {
        "Test": ["CMD", "wget", "-q", "http://127.0.0.1/"],
        "Interval": 5_000_000_000,
        "Timeout": 2_500_000_000,
        "Retries": 4,
        "StartPeriod": 500_000_000,
    }


def test_mounts() -> None:
    mounts = (
        MountSpec(type="bind", source="/srv/data", target="/data", read_only=True),
        MountSpec(type="volume", source="web-cache", target="/cache"),
    )
    container = swarm_service_args(spec(mounts=mounts)).task_template["ContainerSpec"]
    bind, volume = container["Mounts"]
    assert (bind["Type"], bind["Source"], bind["Target"], bind["ReadOnly"]) == (
        "bind",
        "/srv/data",
        "/data",
        True,
    )
    assert (volume["Type"], volume["Source"], volume["Target"], volume["ReadOnly"]) == (
        "volume",
        "web-cache",
        "/cache",
        False,
    )


def test_unknown_mount_type_is_a_release_error() -> None:
    with pytest.raises(ReleaseError, match="type must be one of bind, volume, got 'tmpfs'"):
        swarm_service_args(spec(mounts=(MountSpec(type="tmpfs", source="", target="/t"),)))


def test_resources_in_nano_cpus_and_bytes() -> None:
    args = swarm_service_args(spec(cpu_limit=1.5, memory_limit=256 * 1024 * 1024))
    assert args.task_template["Resources"] == {
        "Limits": {"NanoCPUs": 1_500_000_000, "MemoryBytes": 268_435_456}
    }
    assert not swarm_service_args(spec()).task_template.get("Resources")


def test_replicas_and_restart_policy() -> None:
    args = swarm_service_args(spec(replicas=3))
    assert args.mode == {"replicated": {"Replicas": 3}}
    assert args.task_template["RestartPolicy"] == {
        "Condition": "any",
        "Delay": 2_000_000_000,
        "MaxAttempts": 0,
        "Window": 0,
    }


def test_negative_replicas_is_a_release_error() -> None:
    with pytest.raises(ReleaseError, match="replicas must be >= 0"):
        swarm_service_args(spec(replicas=-1))


def test_ports_with_publish_modes() -> None:
    ports = (
        PortSpec(published_port=80, target_port=8080),
        PortSpec(published_port=9000, target_port=9000, publish_mode=PublishMode.HOST),
        PortSpec(published_port=53, target_port=53, protocol="udp"),
    )
    endpoint = swarm_service_args(spec(ports=ports)).endpoint_spec
    assert endpoint == {
        "Mode": "vip",
        "Ports": [
            {"Protocol": "tcp", "PublishedPort": 80, "TargetPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "tcp", "PublishedPort": 9000, "TargetPort": 9000, "PublishMode": "host"},
            {"Protocol": "udp", "PublishedPort": 53, "TargetPort": 53, "PublishMode": "ingress"},
        ],
    }


def test_no_ports_means_no_ports_key_so_an_update_removes_them() -> None:
    assert swarm_service_args(spec(endpoint_mode="dnsrr")).endpoint_spec == {"Mode": "dnsrr"}


def test_dnsrr_with_host_ports_is_fine() -> None:
    port = PortSpec(published_port=8080, target_port=80, publish_mode=PublishMode.HOST)
    endpoint = swarm_service_args(spec(ports=(port,), endpoint_mode="dnsrr")).endpoint_spec
    assert endpoint["Mode"] == "dnsrr" and endpoint["Ports"][0]["PublishMode"] == "host"


def test_dnsrr_with_an_ingress_port_is_a_release_error() -> None:
    ports = (
        PortSpec(published_port=8080, target_port=80, publish_mode=PublishMode.HOST),
        PortSpec(published_port=8443, target_port=443),
    )
    with pytest.raises(ReleaseError, match=r"dnsrr needs host-mode ports.*8443 use ingress"):
        swarm_service_args(spec(ports=ports, endpoint_mode="dnsrr"))


def test_unknown_endpoint_mode_is_a_release_error() -> None:
    with pytest.raises(ReleaseError, match="endpoint_mode must be 'vip' or 'dnsrr', got 'rr'"):
        swarm_service_args(spec(endpoint_mode="rr"))


def test_update_config_rolls_back_and_starts_first() -> None:
    args = swarm_service_args(spec())
    assert args.update_config == {
        "Parallelism": 1,
        "FailureAction": "rollback",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "start-first",
    }
    assert args.rollback_config["Order"] == "start-first"
    assert args.rollback_config["FailureAction"] == "pause"


def test_host_ports_update_stop_first() -> None:
    port = PortSpec(published_port=8080, target_port=80, publish_mode=PublishMode.HOST)
    args = swarm_service_args(spec(ports=(port,), endpoint_mode="dnsrr"))
    assert args.update_config["Order"] == "stop-first"
    assert args.rollback_config["Order"] == "stop-first"
    assert args.update_config["FailureAction"] == "rollback"


def test_force_update_and_networks() -> None:
    args = swarm_service_args(spec(networks=("backend",)), force_update=3)
    assert args.task_template["ForceUpdate"] == 3
    assert args.networks == ["backend"]
    assert swarm_service_args(spec()).networks is None
    assert swarm_service_args(spec()).task_template["ForceUpdate"] == 0


def test_as_kwargs_names_every_create_service_argument() -> None:
    kwargs = swarm_service_args(spec()).as_kwargs()
    assert set(kwargs) == {
        "name",
        "labels",
        "task_template",
        "mode",
        "endpoint_spec",
        "update_config",
        "rollback_config",
        "networks",
    }
    assert kwargs["name"] == "web"


def test_from_swarm_reads_back_what_verifying_a_restored_spec_needs() -> None:
    spec = ServiceSpec(
        name="web",
        image="slipway/web:abc",
        env={"A": "x=y"},
        ports=(PortSpec(8081, 8080, PublishMode.HOST),),
        replicas=2,
        health_check=HealthCheckSpec(test=("CMD", "true")),
        labels={"slipway.deployment": "abc"},
        endpoint_mode="dnsrr",
    )
    args = swarm_service_args(spec)
    document = {
        "Name": args.name,
        "Labels": args.labels,
        "TaskTemplate": dict(args.task_template),
        "Mode": {"Replicated": {"Replicas": 2}},  # as the engine answers (the SDK lowercases)
        "EndpointSpec": dict(args.endpoint_spec),
    }
    document["TaskTemplate"]["ContainerSpec"]["Image"] = "slipway/web:abc@sha256:" + "0" * 64
    back = from_swarm(document, health_check_path="/health")
    assert back.name == "web" and back.image.startswith("slipway/web:abc@sha256:")
    assert back.env == {"A": "x=y"} and back.replicas == 2 and back.endpoint_mode == "dnsrr"
    assert back.ports == (PortSpec(8081, 8080, PublishMode.HOST),)
    assert back.health_check is not None and back.health_check.test == ("CMD", "true")
    assert back.health_check_path == "/health" and back.labels["slipway.managed"] == "true"
    bare = from_swarm(
        {"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "i"}}}, health_check_path=None
    )
    assert (bare.ports, bare.replicas, bare.health_check) == ((), 1, None)
