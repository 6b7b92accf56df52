"""Translate a Slipway ``ServiceSpec`` into the pieces of a Docker Swarm service spec.

Everything here is pure: no client, no I/O. ``SwarmRuntime`` sends the result to the
engine with ``create_service`` / ``update_service``; tests inspect it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker.types as dt

from app.errors import BadInput, ReleaseError
from app.runtime.host_paths import ENGINE_SOCKETS, SYSTEM_PATHS, HostPathPolicy
from app.types import HealthCheckSpec, MountSpec, PortSpec, PublishMode, ServiceSpec

NANO = 1_000_000_000
MANAGED_LABEL = "slipway.managed"
RESTART_DELAY_S = 2
UPDATE_MONITOR_S = 5
ENDPOINT_MODES = ("vip", "dnsrr")
MOUNT_TYPES = ("bind", "volume")
# The last line of defence, whatever the engine layer checked: these never reach Swarm.
_ALWAYS_REFUSED = HostPathPolicy(protected=(*ENGINE_SOCKETS, *SYSTEM_PATHS))


@dataclass(frozen=True, slots=True)
class SwarmServiceArgs:
    """Keyword arguments of ``APIClient.create_service`` / ``update_service``, complete."""

    name: str
    labels: dict[str, str]
    task_template: dt.TaskTemplate
    mode: dt.ServiceMode
    endpoint_spec: dt.EndpointSpec
    update_config: dt.UpdateConfig
    rollback_config: dt.RollbackConfig
    networks: list[str] | None

    def as_kwargs(self) -> dict[str, Any]:
        """The arguments as a dict, ready for ``create_service(**...)``."""
        return {
            "name": self.name,
            "labels": self.labels,
            "task_template": self.task_template,
            "mode": self.mode,
            "endpoint_spec": self.endpoint_spec,
            "update_config": self.update_config,
            "rollback_config": self.rollback_config,
            "networks": self.networks,
        }


def nanoseconds(seconds: float) -> int:
    """Docker durations are integer nanoseconds."""
    return int(round(seconds * NANO))


def service_labels(spec: ServiceSpec) -> dict[str, str]:
    """Labels of the service itself: the user's labels plus ``slipway.managed``; never env."""
    return {**spec.labels, MANAGED_LABEL: "true"}


def env_list(env: dict[str, str]) -> list[str]:
    """``{"K": "V"}`` -> ``["K=V"]``; always a list so an update can clear the env."""
    return [f"{key}={value}" for key, value in env.items()]


def healthcheck(check: HealthCheckSpec) -> dt.Healthcheck:
    """A Docker health check with nanosecond durations."""
    return dt.Healthcheck(
        test=list(check.test),
        interval=nanoseconds(check.interval_s),
        timeout=nanoseconds(check.timeout_s),
        retries=check.retries,
        start_period=nanoseconds(check.start_period_s),
    )


def mount(spec: MountSpec) -> dt.Mount:
    """A bind mount or named volume; never of the engine socket or a system path."""
    if spec.type not in MOUNT_TYPES:
        raise ReleaseError(
            f"mount {spec.target}: type must be one of {', '.join(MOUNT_TYPES)}, got {spec.type!r}"
        )
    if spec.type == "bind":
        try:
            reason = _ALWAYS_REFUSED.refusal(spec.source)
        except BadInput as exc:
            raise ReleaseError(f"mount {spec.target}: {exc}") from exc
        if reason:
            raise ReleaseError(f"mount {spec.target}: {reason}")
    return dt.Mount(
        target=spec.target, source=spec.source, type=spec.type, read_only=spec.read_only
    )


def container_spec(spec: ServiceSpec) -> dt.ContainerSpec:
    """Image, command, env, labels, health check and mounts of each task."""
    return dt.ContainerSpec(
        image=spec.image,
        command=list(spec.command) if spec.command else None,
        env=env_list(spec.env),
        labels=service_labels(spec),
        healthcheck=healthcheck(spec.health_check) if spec.health_check else None,
        mounts=[mount(m) for m in spec.mounts],
    )


def resources(spec: ServiceSpec) -> dt.Resources:
    """CPU limit in nano CPUs, memory limit in bytes; empty when unlimited."""
    cpu = int(round(spec.cpu_limit * NANO)) if spec.cpu_limit is not None else None
    return dt.Resources(cpu_limit=cpu, mem_limit=spec.memory_limit)


def port_config(port: PortSpec) -> dict[str, Any]:
    """One entry of ``EndpointSpec.Ports``."""
    return {
        "Protocol": port.protocol,
        "PublishedPort": port.published_port,
        "TargetPort": port.target_port,
        "PublishMode": "host" if port.publish_mode is PublishMode.HOST else "ingress",
    }


def endpoint_spec(spec: ServiceSpec) -> dt.EndpointSpec:
    """Endpoint mode and published ports; dnsrr only with host-mode ports."""
    if spec.endpoint_mode not in ENDPOINT_MODES:
        raise ReleaseError(
            f"service {spec.name}: endpoint_mode must be 'vip' or 'dnsrr', "
            f"got {spec.endpoint_mode!r}"
        )
    ingress = [p for p in spec.ports if p.publish_mode is not PublishMode.HOST]
    if spec.endpoint_mode == "dnsrr" and ingress:
        ports = ", ".join(str(p.published_port) for p in ingress)
        raise ReleaseError(
            f"service {spec.name}: endpoint_mode dnsrr needs host-mode ports, but port(s) "
            f"{ports} use ingress mode (Swarm refuses ingress ports with dnsrr)"
        )
    return dt.EndpointSpec(mode=spec.endpoint_mode, ports=[port_config(p) for p in spec.ports])


def uses_host_ports(spec: ServiceSpec) -> bool:
    """True when a port is published in host mode (it cannot be bound twice on a node)."""
    return any(p.publish_mode is PublishMode.HOST for p in spec.ports)


def update_config(spec: ServiceSpec) -> dt.UpdateConfig:
    """Roll one task at a time; roll back on failure; start-first unless host ports."""
    return dt.UpdateConfig(
        parallelism=1,
        failure_action="rollback",
        monitor=nanoseconds(UPDATE_MONITOR_S),
        max_failure_ratio=0,
        order="stop-first" if uses_host_ports(spec) else "start-first",
    )


def rollback_config(spec: ServiceSpec) -> dt.RollbackConfig:
    """Roll back all tasks at once; pause when the rollback itself fails."""
    return dt.RollbackConfig(
        parallelism=0,
        failure_action="pause",
        monitor=nanoseconds(UPDATE_MONITOR_S),
        max_failure_ratio=0,
        order="stop-first" if uses_host_ports(spec) else "start-first",
    )


def restart_policy() -> dt.RestartPolicy:
    """Restart on any exit after a short delay."""
    return dt.RestartPolicy(condition="any", delay=nanoseconds(RESTART_DELAY_S))


def task_template(spec: ServiceSpec, *, force_update: int = 0) -> dt.TaskTemplate:
    """The task template; bump ``force_update`` to restart tasks of an unchanged spec."""
    return dt.TaskTemplate(
        container_spec=container_spec(spec),
        resources=resources(spec),
        restart_policy=restart_policy(),
        force_update=force_update,
    )


def swarm_service_args(spec: ServiceSpec, *, force_update: int = 0) -> SwarmServiceArgs:
    """Everything ``create_service``/``update_service`` need to make ``spec`` true."""
    if spec.replicas < 0:
        raise ReleaseError(f"service {spec.name}: replicas must be >= 0, got {spec.replicas}")
    return SwarmServiceArgs(
        name=spec.name,
        labels=service_labels(spec),
        task_template=task_template(spec, force_update=force_update),
        mode=dt.ServiceMode("replicated", replicas=spec.replicas),
        endpoint_spec=endpoint_spec(spec),
        update_config=update_config(spec),
        rollback_config=rollback_config(spec),
        networks=list(spec.networks) or None,
    )


def from_swarm(document: dict[str, Any], *, health_check_path: str | None) -> ServiceSpec:
    """The parts of a Swarm service spec (``inspect_service()["Spec"]``) that verifying it
    needs: name, image, env (to keep its values out of messages), ports, replicas, health
    check, labels, endpoint mode. ``health_check_path`` is Slipway's, not Swarm's."""
    template = document.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    env = dict(item.partition("=")[::2] for item in container.get("Env") or [])
    endpoint = document.get("EndpointSpec") or {}
    ports = tuple(
        PortSpec(
            published_port=int(p["PublishedPort"]),
            target_port=int(p["TargetPort"]),
            publish_mode=PublishMode.HOST
            if p.get("PublishMode") == "host"
            else PublishMode.INGRESS,
            protocol=str(p.get("Protocol") or "tcp"),
        )
        for p in endpoint.get("Ports") or []
        if p.get("PublishedPort")
    )
    replicated = (document.get("Mode") or {}).get("Replicated") or {}
    test = (container.get("Healthcheck") or {}).get("Test") or []
    check = HealthCheckSpec(test=tuple(test)) if test and test[0] != "NONE" else None
    return ServiceSpec(
        name=str(document.get("Name", "")),
        image=str(container.get("Image", "")),
        env=env,
        ports=ports,
        replicas=int(replicated.get("Replicas", 1)),
        health_check=check,
        health_check_path=health_check_path,
        labels=dict(document.get("Labels") or {}),
        endpoint_mode=str(endpoint.get("Mode") or "vip"),
    )
