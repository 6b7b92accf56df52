"""Deployment queries: one, history, and the queue."""

from __future__ import annotations

from datetime import timedelta

import strawberry
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Deployment as DeploymentRow
from app.db.repos import deployments
from app.graphql.context import Info
from app.graphql.deployments.types import Deployment, QueueJob
from app.graphql.enums import DeploymentStatus, QueueState
from app.graphql.permissions import CanRead
from app.graphql.relay import Connection, connection, window

STATE = {
    "QUEUED": QueueState.WAITING,
    "RUNNING": QueueState.ACTIVE,
    "SCHEDULED": QueueState.DELAYED,
    "DONE": QueueState.COMPLETED,
    "ERROR": QueueState.FAILED,
    "CANCELLED": QueueState.FAILED,
}
RECENT = timedelta(minutes=15)
RECENT_LIMIT = 20


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
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Deployment]:
        page = await info.context.db(
            deployments.page,
            application_id=str(application_id) if application_id is not None else None,
            statuses=[s.value for s in status] if status else None,
            window=window(info, first=first, after=after, last=last, before=before, default=20),
        )
        return connection(page, Deployment.from_row, lambda r: r.id)

    @strawberry.field(
        permission_classes=[CanRead],
        description="ACTIVE (running), WAITING (queued, in the order they will start, with "
        "their position), DELAYED (scheduled, by time), then COMPLETED and FAILED ones of "
        f"the last {RECENT.seconds // 60} minutes (at most {RECENT_LIMIT}, newest first)",
    )
    async def deployment_queue(
        self, info: Info, server_id: strawberry.ID | None = None
    ) -> list[QueueJob]:
        rows = await info.context.db(_queue_rows)
        if server_id is not None:
            rows = [r for r in rows if str(server_id) in (r.server_id, r.build_server_id)]
        jobs, position = [], 0
        for row in rows:
            state = STATE[row.status]
            position += state is QueueState.WAITING
            jobs.append(
                QueueJob(
                    deployment=Deployment.from_row(row),
                    state=state,
                    position=position if state is QueueState.WAITING else None,
                )
            )
        return jobs


def _queue_rows(session: Session) -> list[DeploymentRow]:
    live = deployments.active(session)
    return [
        *(r for r in live if r.status == "RUNNING"),
        *(r for r in live if r.status == "QUEUED"),
        *deployments.scheduled(session),
        *deployments.recent_finished(session, since=utcnow() - RECENT, limit=RECENT_LIMIT),
    ]
