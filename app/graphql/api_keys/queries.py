"""API key queries (ADMIN)."""

from __future__ import annotations

import strawberry

from app.db.repos import api_keys
from app.graphql.api_keys.types import ApiKey
from app.graphql.context import Info
from app.graphql.permissions import IsAdmin


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="every API key, revoked and expired ones too, newest first; no secrets",
    )
    async def api_keys(self, info: Info) -> list[ApiKey]:
        rows = await info.context.db(api_keys.list_all)
        return [ApiKey.from_row(r) for r in rows]
