"""API key mutations. The secret is returned once and never stored."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.db.repos import api_keys
from app.errors import BadInput
from app.graphql.context import Info
from app.graphql.enums import Scope
from app.graphql.permissions import IsAdmin
from app.types import Scope as ScopeValue


@strawberry.type
class CreatedApiKey:
    id: strawberry.ID
    name: str
    scopes: list[Scope]
    created_at: datetime
    key: str = strawberry.field(description="the secret; shown this once only")


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_api_key(self, info: Info, name: str, scopes: list[Scope]) -> CreatedApiKey:
        name = name.strip()
        if not 1 <= len(name) <= 100 or not scopes:
            raise BadInput("an API key needs a name (1-100 characters) and at least one scope")
        values = [ScopeValue(s) for s in scopes]
        row, secret = await info.context.db(api_keys.create, name=name, scopes=values)
        return CreatedApiKey(
            id=strawberry.ID(row.id),
            name=row.name,
            scopes=[Scope(s) for s in row.scopes.split(",")],
            created_at=row.created_at,
            key=secret,
        )
