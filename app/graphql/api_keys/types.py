"""The API key as the API shows it: never the secret or its digest, only a short prefix."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.db.models import ApiKey as ApiKeyRow
from app.graphql.enums import Scope


@strawberry.type(description="An API key, without its secret (shown once, at creation)")
class ApiKey:
    id: strawberry.ID
    name: str
    scopes: list[Scope]
    prefix: str = strawberry.field(
        description="the key's first characters (slw_ and six more), to recognise it; "
        "not enough to use it"
    )
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="the last accepted use, to the minute"
    )
    expires_at: datetime | None = strawberry.field(
        description="refused from this moment on; null: never expires"
    )
    revoked_at: datetime | None = strawberry.field(
        description="refused from this moment on; null: not revoked"
    )

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            scopes=[Scope(s) for s in row.scopes.split(",") if s],
            prefix=row.prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )
