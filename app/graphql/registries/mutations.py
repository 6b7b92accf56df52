"""Registry mutations (ADMIN): create, update, delete, and testRegistry.

Registries hold credentials that the engine sends with every push, and ``testRegistry``
makes outbound requests to the stored URL, so every mutation here needs ADMIN: a DEPLOY
key may point its applications at a registry an ADMIN configured (``registryId``) but can
neither read its password nor move it to another host, nor use the check to probe the
network.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.crypto import Cipher
from app.db.models import Registry as RegistryRow
from app.db.repos import registries
from app.engine.snapshot import registry_target
from app.errors import Conflict, NotFound
from app.graphql.context import Info
from app.graphql.permissions import IsAdmin
from app.graphql.registries.inputs import (
    CreateRegistryInput,
    UpdateRegistryInput,
    registry_columns,
)
from app.graphql.registries.types import Registry, RegistryCheck
from app.registry.client import CHECK_REPOSITORY, registry_client
from app.types import RegistryTarget

USERS_NAMED = 10  # applications named in deleteRegistry's CONFLICT


def _unique_name(session: Session, name: str, registry_id: str | None = None) -> None:
    other = registries.by_name(session, name)
    if other is not None and other.id != registry_id:
        raise Conflict(f"a registry named {name!r} already exists")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # another request took the name meanwhile
        raise Conflict(f"a registry named {name!r} already exists") from exc


def _create(session: Session, data: CreateRegistryInput, cipher: Cipher) -> RegistryRow:
    cols = registry_columns(data, cipher)
    _unique_name(session, cols["name"])
    row = RegistryRow(**cols)
    session.add(row)
    _flush(session, row.name)
    return row


def _update(
    session: Session, registry_id: str, data: UpdateRegistryInput, cipher: Cipher
) -> RegistryRow:
    row = registries.require(session, registry_id)
    cols = registry_columns(data, cipher, current=row)
    if "name" in cols:
        _unique_name(session, cols["name"], row.id)
    for column, value in cols.items():
        setattr(row, column, value)
    _flush(session, row.name)
    return row


def _delete(session: Session, registry_id: str) -> None:
    row = registries.require(session, registry_id)
    users = registries.users(session, registry_id)
    if users:
        named = ", ".join(f"{app.name!r} ({_use(app, registry_id)})" for app in users[:USERS_NAMED])
        more = f" and {len(users) - USERS_NAMED} more" if len(users) > USERS_NAMED else ""
        raise Conflict(
            f"registry {row.name!r} is used by application {named}{more}: point them at "
            "another registry (or none) first"
        )
    session.delete(row)


def _use(app: Any, registry_id: str) -> str:
    uses = [
        field
        for field, column in (
            ("registryId", "registry_id"),
            ("rollbackRegistryId", "rollback_registry_id"),
        )
        if getattr(app, column) == registry_id
    ]
    return " and ".join(uses)


def _target(session: Session, registry_id: str, cipher: Cipher) -> RegistryTarget:
    target = registry_target(registries.require(session, registry_id), cipher)
    if target is None:  # require() found the row, so never; keeps the type narrow
        raise NotFound(f"registry {registry_id!r} does not exist")
    return target


@strawberry.type
class RegistryMutations:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_registry(self, info: Info, input: CreateRegistryInput) -> Registry:
        row = await info.context.db(_create, input, info.context.state.cipher)
        return Registry.from_row(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_registry(
        self, info: Info, id: strawberry.ID, input: UpdateRegistryInput
    ) -> Registry:
        row = await info.context.db(_update, str(id), input, info.context.state.cipher)
        return Registry.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Refused (CONFLICT) while an application uses it as registryId or "
        "rollbackRegistryId",
    )
    async def delete_registry(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.db(_delete, str(id))
        return True

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Log in to the registry and check push rights (an upload started and "
        "cancelled, nothing written): reachable? a registry? credentials accepted? push allowed?",
    )
    async def test_registry(self, info: Info, id: strawberry.ID) -> RegistryCheck:
        state = info.context.state
        target = await info.context.db(_target, str(id), state.cipher)
        client = state.registry or registry_client(state.settings.registry_timeout)
        result = await run_in_threadpool(
            client.check, target, repository=target.repository(CHECK_REPOSITORY)
        )
        return RegistryCheck.from_result(result)
