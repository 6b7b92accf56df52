"""GraphQL type of a server."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.db.models import Server as ServerRow
from app.graphql.relay import Node


@strawberry.type(description="A build or deploy target with its own concurrency limit")
class Server(Node):
    id: strawberry.ID
    name: str
    max_concurrent_builds: int = strawberry.field(
        description="deployments that may run at once with this server as build server"
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: ServerRow) -> Server:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            max_concurrent_builds=row.max_concurrent_builds,
            created_at=row.created_at,
        )
