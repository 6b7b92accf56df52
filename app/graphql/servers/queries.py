"""Server queries."""

from __future__ import annotations

import strawberry

from app.db.repos import servers
from app.graphql.context import Info
from app.graphql.permissions import CanRead
from app.graphql.servers.types import Server


@strawberry.type
class ServerQueries:
    @strawberry.field(permission_classes=[CanRead], description="by name")
    async def servers(self, info: Info) -> list[Server]:
        rows = await info.context.db(servers.all_servers)
        return [Server.from_row(r) for r in rows]
