"""A deployment's inputs, read once from the database so no step holds a session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.crypto import Cipher
from app.db.models import Application, Deployment, Registry
from app.db.repos.applications import build_arg_values
from app.engine.release_spec import ReleasedSpec, decode
from app.errors import SlipwayError
from app.registry.address import stored_secure
from app.runtime.host_paths import admin_binds
from app.types import (
    GIT_SOURCES,
    BuildType,
    DeploymentTrigger,
    GitSourceSpec,
    HealthCheckSpec,
    MountSpec,
    PortSpec,
    PublishMode,
    RegistryAuth,
    RegistryTarget,
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
    registry_auth: RegistryAuth | None = None
    labels: dict[str, str] = field(default_factory=dict)  # a preview's, on its service
    known_hosts: str | None = None  # what FETCH_SOURCE started with (TOFU records new ones)
    admin_binds: frozenset[str] = frozenset()  # bind sources an ADMIN key set
    # images and builds (issue 10)
    registry: RegistryTarget | None = None  # push after build, release by digest
    rollback_registry: RegistryTarget | None = None  # where rollback copies are pushed
    rollback_active: bool = True
    restore_on_failure: bool = True
    clean_cache: bool = False
    build_stage: str | None = None
    build_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    build_memory_limit: int | None = None
    build_cpu_limit: float | None = None


@dataclass(frozen=True)
class RollbackPoint:
    """What a ROLLBACK deployment releases again: an earlier DONE deployment's image and
    the snapshot of what it released."""

    deployment_id: str
    image: str  # the local tag, or the repo@sha256 it was released by
    released: ReleasedSpec
    registry_ref: str | None = None  # the copy in the rollback registry (repo:tag@sha256:...)
    registry_id: str | None = None
    commit_sha: str | None = None
    admin_binds: frozenset[str] = frozenset()  # bind sources an ADMIN key had set


@dataclass(frozen=True)
class DeploymentSnapshot:
    id: str
    trigger: DeploymentTrigger
    log_path: str
    app: AppSnapshot
    build_path: str | None = None  # DROP: the folder inside the archive to build
    clean_cache: bool = False  # this build: no layer cache, base images pulled fresh
    rollback_of: str | None = None  # ROLLBACK: the deployment whose rollback point to release
    rollback_point: RollbackPoint | None = None  # ... loaded (None: see rollback_problem)
    rollback_problem: str | None = None  # why that rollback point cannot be used
    cache_cleared: bool = False  # clearBuildCache since the last build: this one is uncached


def snapshot(
    app: Application,
    dep: Deployment,
    cipher: Cipher,
    registries: Mapping[str, Registry] | None = None,
    rollback_of: Deployment | None = None,
) -> DeploymentSnapshot:
    """``registries`` holds the rows the application names (registry, rollback registry);
    ``rollback_of`` the row a ROLLBACK deployment releases again (None: gone)."""
    env = _str_dict(cipher.decrypt_json(app.env_enc, {}))
    build_secrets = _str_dict(cipher.decrypt_json(app.build_secrets_enc, {}))
    found = registries or {}
    push_to = registry_target(found.get(app.registry_id or ""), cipher)
    rollback_to = registry_target(found.get(app.rollback_registry_id or ""), cipher)
    build_args = build_arg_values(app, cipher)
    git = _git(app, dep, cipher)
    registry = _registry_auth(app, cipher)
    secrets = tuple(
        v
        for v in (
            *env.values(),
            *build_args.values(),
            git.password if git else None,
            git.ssh_key if git else None,
            registry.password if registry else None,
            *build_secrets.values(),
            *(t.auth.password for t in (push_to, rollback_to) if t and t.auth),
        )
        if v
    )
    point, problem = None, None
    if dep.rollback_of_id:
        point, problem = _rollback_point(app, dep.rollback_of_id, rollback_of, cipher)
        if point is not None:  # the env it released may hold values the app no longer has
            secrets += tuple(v for v in point.released.service.env.values() if v)
    clean_cache = bool(app.clean_cache or app.clean_cache_next)
    if dep.clean_cache is not None:
        clean_cache = dep.clean_cache or bool(app.clean_cache_next)
    return DeploymentSnapshot(
        id=dep.id,
        trigger=DeploymentTrigger(dep.trigger),
        log_path=dep.log_path,
        build_path=dep.build_path,
        clean_cache=clean_cache,
        rollback_of=dep.rollback_of_id,
        rollback_point=point,
        rollback_problem=problem,
        cache_cleared=bool(app.clean_cache_next),
        app=AppSnapshot(
            id=app.id,
            app_name=app.app_name,
            source_type=SourceType(app.source_type),
            build_type=BuildType(app.build_type),
            git=git,
            docker_image=app.docker_image,
            dockerfile=app.dockerfile,
            context_path=app.context_path,
            build_args=build_args,
            env=env,
            ports=tuple(_port(p) for p in app.ports or []),
            mounts=tuple(_mount(m) for m in app.mounts or []),
            replicas=app.replicas,
            cpu_limit=app.cpu_limit,
            memory_limit=app.memory_limit,
            health_check=_health(app.health_check_command),
            health_check_path=app.health_check_path,
            health_timeout=app.health_timeout,
            command=tuple(app.command) if app.command else None,
            secrets=secrets,
            registry_auth=registry,
            labels=_preview_labels(app),
            known_hosts=app.known_hosts,
            admin_binds=admin_binds(app.mounts or []),
            registry=push_to,
            rollback_registry=rollback_to,
            rollback_active=bool(app.rollback_active),
            restore_on_failure=bool(app.restore_on_failure),
            clean_cache=bool(app.clean_cache),
            build_stage=app.docker_build_stage,
            build_secrets=build_secrets,
            build_memory_limit=app.build_memory_limit,
            build_cpu_limit=app.build_cpu_limit,
        ),
    )


def _rollback_point(
    app: Application, target_id: str, row: Deployment | None, cipher: Cipher
) -> tuple[RollbackPoint | None, str | None]:
    """The rollback point of ``row``, or why there is none (checked again at run time:
    it may have been pruned, or rollbackActive turned off, since it was queued)."""
    gone = f"deployment {target_id}"
    if row is None or row.application_id != app.id:
        return None, f"{gone} no longer exists (pruned by retention or cleared)"
    if not app.rollback_active:
        return None, f"rollbackActive is off for {app.app_name}: its rollback points are not used"
    if (
        row.status != "DONE"
        or not row.release_spec_enc
        or not (row.rollback_image or row.rollback_registry_ref)
    ):
        return None, f"{gone} has no rollback point (its image was pruned, or it kept none)"
    try:
        released = decode(cipher, row.release_spec_enc)
    except SlipwayError as exc:
        return None, f"{gone}: {exc}"
    return (
        RollbackPoint(
            deployment_id=row.id,
            image=row.rollback_image or row.rollback_registry_ref or "",
            released=released,
            registry_ref=row.rollback_registry_ref,
            registry_id=row.rollback_registry_id,
            commit_sha=row.commit_sha,
            admin_binds=released.admin_binds,
        ),
        None,
    )


def registry_target(row: Registry | None, cipher: Cipher) -> RegistryTarget | None:
    """A registry row as the engine uses it, password decrypted (None for no row)."""
    if row is None:
        return None
    password = cipher.decrypt_json(row.password_enc)
    auth = None
    if row.username and isinstance(password, str):
        auth = RegistryAuth(username=row.username, password=password, registry=row.host)
    return RegistryTarget(
        id=row.id,
        name=row.name,
        host=row.host,
        image_prefix=row.image_prefix,
        auth=auth,
        secure=stored_secure(row.url),  # https, but http for http:// and loopback hosts
    )


def _git(app: Application, dep: Deployment, cipher: Cipher) -> GitSourceSpec | None:
    """The application's repository, narrowed to the deployment's tag, branch or commit."""
    if not app.repository:
        return None
    password = cipher.decrypt_json(app.repository_password_enc)
    ssh_key = cipher.decrypt_json(app.ssh_key_enc)
    branch, tag = app.branch, None
    if dep.source_ref and dep.source_ref_kind == "tag":
        branch, tag = None, dep.source_ref
    elif dep.source_ref:
        branch = dep.source_ref
    return GitSourceSpec(
        repository=app.repository,
        branch=branch,
        username=app.repository_username,
        password=password if isinstance(password, str) else None,
        provider=SourceType(app.source_type) if app.source_type in GIT_SOURCES else SourceType.GIT,
        tag=tag,
        commit_sha=dep.requested_sha,
        ssh_key=ssh_key if isinstance(ssh_key, str) else None,
        known_hosts=app.known_hosts,
        submodules=bool(app.submodules),
    )


def _registry_auth(app: Application, cipher: Cipher) -> RegistryAuth | None:
    """The credentials, for the registry host they were given for (never the image's
    current host: a changed image must not carry them elsewhere)."""
    password = cipher.decrypt_json(app.registry_password_enc)
    if not app.registry_username or not isinstance(password, str) or not app.registry_host:
        return None
    return RegistryAuth(
        username=app.registry_username, password=password, registry=app.registry_host
    )


def _str_dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _mount(data: dict[str, Any]) -> MountSpec:
    return MountSpec(
        type=str(data["type"]),
        source=str(data["source"]),
        target=str(data["target"]),
        read_only=bool(data.get("read_only")),
    )


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


def _preview_labels(app: Application) -> dict[str, str]:
    """Labels on a preview's service: which PR it is, and its host for a router."""
    if not app.parent_id:
        return {}
    labels = {
        "slipway.preview.parent": str(app.parent_id),
        "slipway.preview.number": str(app.preview_number),
    }
    host = app.preview_domain
    if host:
        router = app.app_name
        labels |= {
            "slipway.domain": host,
            "traefik.enable": "true",
            f"traefik.http.routers.{router}.rule": f"Host(`{host}`)",
        }
        if app.ports:
            port = app.ports[0]["target_port"]
            labels[f"traefik.http.services.{router}.loadbalancer.server.port"] = str(port)
    return labels
