"""GraphQL types of applications. Env values and credentials are never returned."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.db.models import Application as ApplicationRow
from app.graphql.context import Info
from app.graphql.deployments.loaders import application_deployments_loader
from app.graphql.enums import (
    ApplicationHealth,
    ApplicationStatus,
    BuildType,
    PublishMode,
    SourceType,
    TriggerType,
)
from app.graphql.permissions import hidden_from_read
from app.graphql.relay import Connection, Node, connection, window

if TYPE_CHECKING:
    from app.graphql.deployments.types import Deployment


@strawberry.type
class Port:
    published_port: int
    target_port: int
    publish_mode: PublishMode


@strawberry.type
class Mount:
    type: str
    source: str = strawberry.field(
        graphql_type=str | None,  # a bind's source is a server path, like logPath
        description="the volume name or host path; null for READ keys",
        extensions=hidden_from_read(),
    )
    target: str
    read_only: bool


@strawberry.type
class Application(Node):
    id: strawberry.ID
    name: str
    app_name: str = strawberry.field(description="the Swarm service name")
    status: ApplicationStatus
    health: ApplicationHealth = strawberry.field(
        description="how it runs since its last DONE deployment, as the runtime monitor saw "
        "it (UNKNOWN until watched); live with applicationHealth"
    )
    source_type: SourceType
    build_type: BuildType
    repository: str | None = strawberry.field(description="without credentials")
    has_repository_credentials: bool
    branch: str | None
    docker_image: str | None
    dockerfile: str
    context_path: str
    build_args: strawberry.scalars.JSON = strawberry.field(
        description="build argument names, each mapped to null: values are write-only",
        deprecation_reason="values are write-only; use buildArgKeys",
    )
    build_arg_keys: list[str] = strawberry.field(
        description="build argument names; values are write-only"
    )
    docker_context_path: str = strawberry.field(description="the build context (contextPath)")
    docker_build_stage: str | None = strawberry.field(
        description="the Dockerfile stage built (--target); null: the last"
    )
    build_secret_keys: list[str] = strawberry.field(
        description="ids of the build secrets (buildSecrets); values are write-only"
    )
    build_secrets: list[str] = strawberry.field(
        description="the build secrets' ids, as buildSecretKeys: values are write-only"
    )
    build_memory_limit_mb: int | None = strawberry.field(
        description="megabytes each build step may use (classic builder; BuildKit ignores it)"
    )
    build_cpu_limit: float | None = strawberry.field(
        description="cores each build step may use (classic builder; BuildKit ignores it)"
    )
    clean_cache: bool = strawberry.field(
        description="every build runs without cache and pulls base images fresh"
    )
    clean_cache_next: bool = strawberry.field(
        description="clearBuildCache was called: the next build runs without cache"
    )
    env_keys: list[str] = strawberry.field(description="names only; values are write-only")
    ports: list[Port]
    mounts: list[Mount]
    replicas: int
    cpu_limit: float | None
    memory_limit_mb: int | None
    health_check_command: list[str] | None
    health_check_path: str | None
    health_timeout: float | None
    command: list[str] | None
    deploy_timeout: float | None = strawberry.field(description="seconds; null: the default")
    keep_deployments: int | None = strawberry.field(description="null: the default")
    server_id: strawberry.ID | None
    build_server_id: strawberry.ID | None
    has_ssh_key: bool = strawberry.field(description="the key itself is write-only")
    known_hosts: str | None = strawberry.field(
        description="pinned host keys, or the ones recorded on first use"
    )
    submodules: bool
    registry_username: str | None
    has_registry_password: bool
    registry_id: strawberry.ID | None = strawberry.field(
        description="the registry each build is pushed to"
    )
    rollback_registry_id: strawberry.ID | None = strawberry.field(
        description="the registry rollback copies are pushed to"
    )
    auto_deploy: bool
    trigger_type: TriggerType
    watch_paths: list[str]
    webhook_path: str = strawberry.field(
        description="POST target for the provider's webhook (add the host); see "
        "regenerateWebhookSecret for the secret"
    )
    has_webhook_secret: bool
    preview_enabled: bool
    preview_limit: int
    has_preview_env: bool
    preview_inherit_env: bool
    preview_allow_forks: bool
    preview_port_base: int | None
    preview_domain: str | None
    parent_application_id: strawberry.ID | None = strawberry.field(
        description="set on a preview: the application it was derived from"
    )
    preview_number: int | None = strawberry.field(description="the pull request it previews")
    rollback_active: bool = strawberry.field(
        description="every DONE deployment keeps a rollback point (its image and what was "
        "released) that rollbackDeployment can release again"
    )
    restore_on_failure: bool = strawberry.field(
        description="a deployment that replaced a running version and then fails "
        "VERIFY_HEALTH puts the previous release back and waits for it before ending ERROR"
    )
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def deployments(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[Deployment, strawberry.lazy("app.graphql.deployments.types")]]:
        from app.graphql.deployments.types import Deployment

        asked = window(info, first=first, after=after, last=last, before=before, default=20)
        page = await application_deployments_loader(info.context).load((str(self.id), asked))
        return connection(page, Deployment.from_row, lambda r: r.id)

    @classmethod
    def from_row(cls, row: ApplicationRow) -> Application:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            app_name=row.app_name,
            status=ApplicationStatus(row.status),
            health=ApplicationHealth(row.health or "UNKNOWN"),
            source_type=SourceType(row.source_type),
            build_type=BuildType(row.build_type),
            repository=row.repository,
            has_repository_credentials=bool(row.repository_password_enc),
            branch=row.branch,
            docker_image=row.docker_image,
            dockerfile=row.dockerfile,
            context_path=row.context_path,
            build_args=strawberry.scalars.JSON(dict.fromkeys(_build_arg_keys(row))),
            build_arg_keys=_build_arg_keys(row),
            docker_context_path=row.context_path,
            docker_build_stage=row.docker_build_stage,
            build_secret_keys=sorted(row.build_secret_keys or []),
            build_secrets=sorted(row.build_secret_keys or []),
            build_memory_limit_mb=(
                row.build_memory_limit // (1024 * 1024) if row.build_memory_limit else None
            ),
            build_cpu_limit=row.build_cpu_limit,
            clean_cache=bool(row.clean_cache),
            clean_cache_next=bool(row.clean_cache_next),
            env_keys=list(row.env_keys or []),
            ports=[
                Port(
                    published_port=p["published_port"],
                    target_port=p["target_port"],
                    publish_mode=PublishMode(p.get("publish_mode", "INGRESS")),
                )
                for p in row.ports or []
            ],
            mounts=[
                Mount(
                    type=m["type"],
                    source=m["source"],
                    target=m["target"],
                    read_only=bool(m.get("read_only")),
                )
                for m in row.mounts or []
            ],
            replicas=row.replicas,
            cpu_limit=row.cpu_limit,
            memory_limit_mb=row.memory_limit // (1024 * 1024) if row.memory_limit else None,
            health_check_command=row.health_check_command,
            health_check_path=row.health_check_path,
            health_timeout=row.health_timeout,
            command=row.command,
            deploy_timeout=row.deploy_timeout,
            keep_deployments=row.keep_deployments,
            server_id=strawberry.ID(row.server_id) if row.server_id else None,
            build_server_id=strawberry.ID(row.build_server_id) if row.build_server_id else None,
            has_ssh_key=bool(row.ssh_key_enc),
            known_hosts=row.known_hosts,
            submodules=bool(row.submodules),
            registry_username=row.registry_username,
            has_registry_password=bool(row.registry_password_enc),
            registry_id=strawberry.ID(row.registry_id) if row.registry_id else None,
            rollback_registry_id=(
                strawberry.ID(row.rollback_registry_id) if row.rollback_registry_id else None
            ),
            auto_deploy=bool(row.auto_deploy),
            trigger_type=TriggerType(row.trigger_type or "PUSH"),
            watch_paths=list(row.watch_paths or []),
            webhook_path=f"/webhooks/{webhook_provider(row.source_type)}/{row.id}",
            has_webhook_secret=bool(row.webhook_secret_enc),
            preview_enabled=bool(row.preview_enabled),
            preview_limit=row.preview_limit or 3,
            has_preview_env=bool(row.preview_env_enc),
            preview_inherit_env=bool(row.preview_inherit_env),
            preview_allow_forks=bool(row.preview_allow_forks),
            preview_port_base=row.preview_port_base,
            preview_domain=row.preview_domain,
            parent_application_id=strawberry.ID(row.parent_id) if row.parent_id else None,
            preview_number=row.preview_number,
            rollback_active=bool(row.rollback_active),
            restore_on_failure=bool(row.restore_on_failure),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _build_arg_keys(row: ApplicationRow) -> list[str]:
    """Names only; a row older than migration 0004 may still hold them in ``build_args``."""
    return sorted({*(row.build_arg_keys or []), *(row.build_args or {})})


def webhook_provider(source_type: str) -> str:
    """The provider segment of an application's webhook URL."""
    return {"GITLAB": "gitlab", "BITBUCKET": "bitbucket", "GITEA": "gitea"}.get(
        source_type, "github"
    )
