"""Application mutations: create, update, delete. Validation happens before any write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy.orm import Session

from app.db.repos import applications, deployments, servers
from app.errors import BadInput, Conflict, Forbidden
from app.graphql.applications.build_cache import mark_cleared, remove_cached_images
from app.graphql.applications.inputs import (
    CreateApplicationInput,
    UpdateApplicationInput,
    check_name,
    check_source,
    new_app_name,
    settings_columns,
)
from app.graphql.applications.mounts import authorize_mounts
from app.graphql.applications.registry_binding import bind_registry
from app.graphql.applications.types import Application
from app.graphql.applications.webhook import new_webhook_secret, store_webhook_secret
from app.graphql.context import Info
from app.graphql.permissions import CanDeploy
from app.graphql.registries.references import check_references
from app.runtime.host_paths import HostPathPolicy
from app.settings import Settings
from app.sources.validate import check_local_source
from app.types import Scope, SourceType


@dataclass(frozen=True)
class _Guard:
    """What decides which host paths the caller may bind (used in the worker thread:
    resolving paths touches the file system)."""

    settings: Settings
    admin: bool

    def mounts(self, mounts: list[dict[str, Any]], current: Any = ()) -> list[dict[str, Any]]:
        policy = HostPathPolicy.from_settings(self.settings)
        return authorize_mounts(mounts, policy=policy, admin=self.admin, current=current)

    def ports(self, cols: dict[str, Any]) -> None:
        """Ports below 1024 are the host's services' (ssh, http), and a few above are
        Slipway's own API, Docker's and the databases' (``reserved_ports``): a Swarm ingress
        port there takes their traffic from every node, so publishing one needs ADMIN."""
        if self.admin:
            return
        published = [p["published_port"] for p in cols.get("ports") or []]
        if cols.get("preview_port_base") is not None:
            published.append(cols["preview_port_base"])
        low = sorted(p for p in published if p < PRIVILEGED_PORTS)
        if low:
            raise Forbidden(
                f"publishing port {low[0]} (below {PRIVILEGED_PORTS}) needs an ADMIN key"
            )
        reserved = sorted(set(published) & self.settings.reserved_ports)
        if reserved:
            raise Forbidden(
                f"publishing port {reserved[0]} needs an ADMIN key: it is Slipway's own or "
                "in SLIPWAY_ADMIN_PORTS"
            )


PRIVILEGED_PORTS = 1024


def _guard(info: Info) -> _Guard:
    return _Guard(info.context.state.settings, Scope.ADMIN in info.context.who().scopes)


def _check_server(session: Session, cols: dict[str, Any]) -> None:
    server_id = cols.get("build_server_id")
    if server_id and servers.get(session, server_id) is None:
        raise BadInput(f"buildServerId {server_id!r}: no such server")


def _create(session: Session, cols: dict[str, Any], guard: _Guard) -> Any:
    _check_server(session, cols)
    check_references(session, cols)
    guard.ports(cols)
    if "mounts" in cols:
        cols["mounts"] = guard.mounts(cols["mounts"])
    bind_registry(cols)
    return applications.create(session, **cols)


def _update(session: Session, app_id: str, cols: dict[str, Any], guard: _Guard) -> Any:
    _check_server(session, cols)
    check_references(session, cols)
    row = applications.require(session, app_id)
    merged = {c: getattr(row, c) for c in ("repository", "docker_image")} | cols
    check_source(SourceType(row.source_type), merged)
    guard.ports(cols)
    if "mounts" in cols:
        cols["mounts"] = guard.mounts(cols["mounts"], row.mounts or [])
    bind_registry(cols, row)
    for column, value in cols.items():
        setattr(row, column, value)
    session.flush()
    return row


def _repository_of(session: Session, app_id: str) -> str | None:
    repository: str | None = applications.require(session, app_id).repository
    return repository


def _delete(session: Session, app_id: str) -> str:
    row = applications.require(session, app_id)
    if any(d.application_id == app_id for d in deployments.active(session)):
        raise Conflict("the application has a queued or running deployment; wait or cancel it")
    session.delete(row)
    return row.app_name


@strawberry.type
class ApplicationMutations:
    @strawberry.mutation(permission_classes=[CanDeploy])
    async def create_application(self, info: Info, input: CreateApplicationInput) -> Application:
        state = info.context.state
        source = SourceType(input.source_type)
        cols = settings_columns(input, state.cipher)
        check_source(source, cols)
        check_local_source(cols, current_repository=None, scopes=info.context.who().scopes)
        cols |= {
            "name": check_name(input.name),
            "app_name": new_app_name(input.name, input.app_name),
            "source_type": source.value,
        }
        row = await info.context.db(_create, cols, _guard(info))
        return Application.from_row(row)

    @strawberry.mutation(permission_classes=[CanDeploy])
    async def update_application(
        self, info: Info, id: strawberry.ID, input: UpdateApplicationInput
    ) -> Application:
        cols = settings_columns(input, info.context.state.cipher)
        if input.name is not None:
            cols["name"] = check_name(input.name)
        if "repository" in cols or cols.get("submodules"):  # file:// needs ADMIN
            current = await info.context.db(_repository_of, str(id))
            check_local_source(cols, current_repository=current, scopes=info.context.who().scopes)
        row = await info.context.db(_update, str(id), cols, _guard(info))
        return Application.from_row(row)

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Delete the application and its history (its Swarm service is kept running)",
    )
    async def delete_application(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.db(_delete, str(id))
        return True

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Clear the application's build cache: its next build runs without cache "
        "and pulls base images fresh, and the images its builds created are removed where no "
        "image or container still needs them (another application's cache is never touched)",
    )
    async def clear_build_cache(self, info: Info, application_id: strawberry.ID) -> bool:
        app_name = await info.context.db(mark_cleared, str(application_id))
        await remove_cached_images(info.context.state, app_name)
        return True

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="A new webhook secret, shown only this once; the old one stops working",
    )
    async def regenerate_webhook_secret(self, info: Info, application_id: strawberry.ID) -> str:
        secret = new_webhook_secret()
        cipher = info.context.state.cipher
        await info.context.db(store_webhook_secret, str(application_id), secret, cipher)
        return secret
