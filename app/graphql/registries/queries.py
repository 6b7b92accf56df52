"""Registry queries (READ: a registry's fields hold no secret, only ``hasPassword``)."""

from __future__ import annotations

import strawberry

from app.db.repos import registries
from app.graphql.context import Info
from app.graphql.permissions import CanRead
from app.graphql.registries.types import Registry


@strawberry.type
class RegistryQueries:
    @strawberry.field(permission_classes=[CanRead], description="by name")
    async def registries(self, info: Info) -> list[Registry]:
        rows = await info.context.db(registries.all_registries)
        return [Registry.from_row(r) for r in rows]

    @strawberry.field(permission_classes=[CanRead])
    async def registry(self, info: Info, id: strawberry.ID) -> Registry | None:
        row = await info.context.db(registries.get, str(id))
        return Registry.from_row(row) if row else None
