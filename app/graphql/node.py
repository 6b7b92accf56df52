"""``node(id:)``: any application, deployment, server or registry by its id (Relay's Node).

Ids are the rows' own (unique across tables), so the lookup tries each table by primary
key in one transaction; an id no table holds, or one of a type that is not a Node (an
API key's, say), is null, as Relay's spec has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from sqlalchemy.orm import Session

from app.db.repos import applications, deployments, registries, servers
from app.graphql.applications.types import Application
from app.graphql.context import Info
from app.graphql.deployments.types import Deployment
from app.graphql.permissions import CanRead
from app.graphql.registries.types import Registry
from app.graphql.relay import Node
from app.graphql.servers.types import Server

MAX_ID = 64  # ours have 24 characters: a longer one is nobody's, without a lookup

# Each Node type: how its row is found by id, and how it becomes the GraphQL object.
NODE_TYPES: tuple[tuple[Callable[[Session, str], Any], Callable[[Any], Node]], ...] = (
    (applications.get, Application.from_row),
    (deployments.get, Deployment.from_row),
    (servers.get, Server.from_row),
    (registries.get, Registry.from_row),
)


def find(session: Session, node_id: str) -> Node | None:
    if not node_id or len(node_id) > MAX_ID:
        return None
    for get, to_node in NODE_TYPES:
        if (row := get(session, node_id)) is not None:
            return to_node(row)
    return None


@strawberry.type
class NodeQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="the application, deployment, server or registry with this id; null when "
        "none has it",
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await info.context.db(find, str(id))
