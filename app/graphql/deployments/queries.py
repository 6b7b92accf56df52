"""Deployment queries: one, history, and the queue."""

from __future__ import annotations

import strawberry

from app.db.repos import deployments
from app.graphql.context import Info
from app.graphql.deployments.types import Deployment, QueueJob
from app.graphql.enums import DeploymentStatus, QueueState
from app.graphql.permissions import CanRead
from app.graphql.relay import Connection, check_first, connection, decode_cursor

STATE = {"QUEUED": QueueState.WAITING, "RUNNING": QueueState.ACTIVE}


@strawberry.type
class DeploymentQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def deployment(self, info: Info, id: strawberry.ID) -> Deployment | None:
        row = await info.context.db(deployments.get, str(id))
        return Deployment.from_row(row) if row else None

    @strawberry.field(permission_classes=[CanRead], description="newest first")
    async def deployments(
        self,
        info: Info,
        application_id: strawberry.ID | None = None,
        status: list[DeploymentStatus] | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Deployment]:
        rows, more = await info.context.db(
            deployments.page,
            application_id=str(application_id) if application_id is not None else None,
            statuses=[s.value for s in status] if status else None,
            first=check_first(first, 20),
            after=decode_cursor(after),
        )
        return connection(rows, more, Deployment.from_row, lambda r: r.id)

    @strawberry.field(permission_classes=[CanRead], description="queued and running, oldest first")
    async def deployment_queue(
        self, info: Info, server_id: strawberry.ID | None = None
    ) -> list[QueueJob]:
        rows = await info.context.db(
            deployments.active, server_id=str(server_id) if server_id is not None else None
        )
        jobs, position = [], 0
        for row in rows:
            waiting = row.status == "QUEUED"
            position += waiting
            jobs.append(
                QueueJob(
                    deployment=Deployment.from_row(row),
                    state=STATE[row.status],
                    position=position if waiting else None,
                )
            )
        return jobs
