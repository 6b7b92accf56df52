"""Server mutations (ADMIN): register a server, change its concurrency limit."""

from __future__ import annotations

import strawberry
from sqlalchemy.orm import Session

from app.db.models import Server as ServerRow
from app.db.repos import servers
from app.errors import BadInput
from app.graphql.context import Info
from app.graphql.limits import check_display_name
from app.graphql.permissions import IsAdmin
from app.graphql.servers.types import Server

MAX_LIMIT = 64


def _check_limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise BadInput(f"maxConcurrentBuilds must be within 1-{MAX_LIMIT}, got {value}")
    return value


def _set_limit(session: Session, server_id: str, limit: int) -> ServerRow:
    row = servers.require(session, server_id)
    row.max_concurrent_builds = limit
    session.flush()
    return row


@strawberry.type
class ServerMutations:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_server(self, info: Info, name: str, max_concurrent_builds: int = 1) -> Server:
        name = check_display_name(name)
        row = await info.context.db(
            servers.create, name=name, max_concurrent_builds=_check_limit(max_concurrent_builds)
        )
        return Server.from_row(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_server(
        self, info: Info, id: strawberry.ID, max_concurrent_builds: int
    ) -> Server:
        row = await info.context.db(_set_limit, str(id), _check_limit(max_concurrent_builds))
        return Server.from_row(row)
