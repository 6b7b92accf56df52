"""API key mutations. The secret is returned once and never stored."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from starlette.concurrency import run_in_threadpool

from app.db.base import utcnow
from app.db.repos import api_keys
from app.db.session import Database
from app.errors import BadInput
from app.graphql.context import Info
from app.graphql.enums import Scope
from app.graphql.limits import check_display_name
from app.graphql.permissions import IsAdmin
from app.types import Scope as ScopeValue


@strawberry.type
class CreatedApiKey:
    id: strawberry.ID
    name: str
    scopes: list[Scope]
    created_at: datetime
    prefix: str = strawberry.field(description="the key's first characters, as apiKeys shows")
    expires_at: datetime | None
    key: str = strawberry.field(description="the secret; shown this once only")


def _revoke(db: Database, key_id: str) -> bool:
    with db.session(locking=True) as session:  # serialises the last-ADMIN check
        return api_keys.revoke(session, key_id)


def _expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise BadInput("expiresAt needs a time zone (e.g. 2027-01-01T00:00:00Z)")
    if expires_at.astimezone(UTC) <= utcnow():
        raise BadInput("expiresAt must be in the future")
    return expires_at.astimezone(UTC)


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_api_key(
        self,
        info: Info,
        name: str,
        scopes: list[Scope],
        expires_at: datetime | None = None,
    ) -> CreatedApiKey:
        name = check_display_name(name, "name")  # no control or bidi characters (nor NUL)
        if not scopes:
            raise BadInput("an API key needs at least one scope")
        expiry = _expiry(expires_at)
        values = [ScopeValue(s) for s in scopes]
        row, secret = await info.context.db(
            api_keys.create, name=name, scopes=values, expires_at=expiry
        )
        return CreatedApiKey(
            id=strawberry.ID(row.id),
            name=row.name,
            scopes=[Scope(s) for s in row.scopes.split(",")],
            created_at=row.created_at,
            prefix=row.prefix,
            expires_at=row.expires_at,
            key=secret,
        )

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Refuse the key from its next request on; its WebSockets are closed "
        "within seconds. True when revoked now, false when it already was; NOT_FOUND for an "
        "unknown id. The last usable ADMIN key is kept (CONFLICT): create another first. "
        "A key may revoke itself.",
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> bool:
        return await run_in_threadpool(_revoke, info.context.state.db, str(id))
