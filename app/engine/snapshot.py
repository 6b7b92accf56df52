"""A deployment's inputs, read once from the database so no step holds a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.crypto import Cipher
from app.db.models import Application, Deployment
from app.types import (
    BuildType,
    DeploymentTrigger,
    GitSourceSpec,
    HealthCheckSpec,
    MountSpec,
    PortSpec,
    PublishMode,
    SourceType,
)


@dataclass(frozen=True)
class AppSnapshot:
    id: str
    app_name: str
    source_type: SourceType
    build_type: BuildType
    git: GitSourceSpec | None
    docker_image: str | None
    dockerfile: str
    context_path: str
    build_args: dict[str, str]
    env: dict[str, str]
    ports: tuple[PortSpec, ...]
    mounts: tuple[MountSpec, ...]
    replicas: int
    cpu_limit: float | None
    memory_limit: int | None
    health_check: HealthCheckSpec | None
    health_check_path: str | None
    health_timeout: float | None
    command: tuple[str, ...] | None
    secrets: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DeploymentSnapshot:
    id: str
    trigger: DeploymentTrigger
    log_path: str
    app: AppSnapshot


def snapshot(app: Application, dep: Deployment, cipher: Cipher) -> DeploymentSnapshot:
    env = _str_dict(cipher.decrypt_json(app.env_enc, {}))
    password = cipher.decrypt_json(app.repository_password_enc)
    git = None
    if app.repository:
        git = GitSourceSpec(
            repository=app.repository,
            branch=app.branch,
            username=app.repository_username,
            password=password if isinstance(password, str) else None,
        )
    secrets = tuple(v for v in (*env.values(), git.password if git else None) if v)
    return DeploymentSnapshot(
        id=dep.id,
        trigger=DeploymentTrigger(dep.trigger),
        log_path=dep.log_path,
        app=AppSnapshot(
            id=app.id,
            app_name=app.app_name,
            source_type=SourceType(app.source_type),
            build_type=BuildType(app.build_type),
            git=git,
            docker_image=app.docker_image,
            dockerfile=app.dockerfile,
            context_path=app.context_path,
            build_args=dict(app.build_args or {}),
            env=env,
            ports=tuple(_port(p) for p in app.ports or []),
            mounts=tuple(MountSpec(**m) for m in app.mounts or []),
            replicas=app.replicas,
            cpu_limit=app.cpu_limit,
            memory_limit=app.memory_limit,
            health_check=_health(app.health_check_command),
            health_check_path=app.health_check_path,
            health_timeout=app.health_timeout,
            command=tuple(app.command) if app.command else None,
            secrets=secrets,
        ),
    )


def _str_dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _port(data: dict[str, Any]) -> PortSpec:
    return PortSpec(
        published_port=int(data["published_port"]),
        target_port=int(data["target_port"]),
        publish_mode=PublishMode(data.get("publish_mode", "INGRESS")),
        protocol=str(data.get("protocol", "tcp")),
    )


def _health(command: list[str] | None) -> HealthCheckSpec | None:
    if not command:
        return None
    return HealthCheckSpec(test=tuple(command))
