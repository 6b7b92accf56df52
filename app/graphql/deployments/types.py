"""GraphQL types of deployments and their logs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import strawberry
from starlette.concurrency import run_in_threadpool

from app.db.models import Deployment as DeploymentRow
from app.db.models import DeploymentEvent
from app.errors import BadInput, NotFound
from app.graphql.context import Info
from app.graphql.deployments.loaders import (
    applications_loader,
    events_loader,
    queue_positions_loader,
)
from app.graphql.enums import DeploymentStatus, DeploymentTrigger, LogStream, QueueState
from app.graphql.permissions import hidden_from_read
from app.graphql.relay import Connection, Node
from app.logs.files import read_after

if TYPE_CHECKING:
    from app.graphql.applications.types import Application

MAX_LOG_LIMIT = 10_000


@strawberry.type(description="One line of a deployment's log; seq is 1, 2, 3 ... without gaps")
class LogLine:
    seq: int
    timestamp: datetime
    stream: LogStream
    step: str | None
    message: str


@strawberry.type(description="One pipeline step of a deployment, with its duration")
class DeploymentStep:
    step: str
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    message: str | None

    @classmethod
    def from_row(cls, row: DeploymentEvent) -> DeploymentStep:
        return cls(
            step=row.step,
            outcome=row.outcome,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_ms=row.duration_ms,
            message=row.message,
        )


@strawberry.type
class Deployment(Node):
    id: strawberry.ID
    application_id: strawberry.ID
    title: str
    description: str | None
    status: DeploymentStatus
    trigger: DeploymentTrigger
    commit_sha: str | None
    requested_commit_sha: str | None = strawberry.field(
        description="the exact commit asked for (commitSha, or a webhook's payload); "
        "commitSha is what was checked out"
    )
    source_ref: str | None = strawberry.field(
        description="the branch or tag fetched, when not the application's branch"
    )
    image_ref: str | None = strawberry.field(
        description="immutable reference of the image that was released"
    )
    log_path: str = strawberry.field(
        graphql_type=str | None,  # the attribute is always the path; READ keys see null
        description="the log file on the server; null for READ keys (a server path)",
        extensions=hidden_from_read(),
    )
    pid: int | None = strawberry.field(
        description="the process running it, while RUNNING; null for READ keys",
        extensions=hidden_from_read(),
    )
    server_id: strawberry.ID | None
    build_server_id: strawberry.ID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error_message: str | None
    scheduled_at: datetime | None = strawberry.field(description="when SCHEDULED: its time")
    cancel_requested: bool = strawberry.field(
        description="a cancel or kill was asked for and the worker is stopping it"
    )
    rollback_of_id: strawberry.ID | None = strawberry.field(
        description="a ROLLBACK: the deployment whose rollback point it released again"
    )
    # DONE with a rollback point (image and snapshot) kept: from the row, no Docker call
    has_rollback_point: strawberry.Private[bool] = False

    @strawberry.field
    async def application(
        self, info: Info
    ) -> Annotated[Application, strawberry.lazy("app.graphql.applications.types")]:
        from app.graphql.applications.types import Application

        row = await applications_loader(info.context).load(str(self.application_id))
        if row is None:
            raise NotFound(f"application {self.application_id} no longer exists")
        return Application.from_row(row)

    @strawberry.field(
        description="rollbackDeployment would accept it: DONE, its rollback point (image and "
        "release snapshot) still kept, and rollbackActive on for its application"
    )
    async def can_rollback(self, info: Info) -> bool:
        if not self.has_rollback_point or self.status != DeploymentStatus.DONE:
            return False
        row = await applications_loader(info.context).load(str(self.application_id))
        return row is not None and bool(row.rollback_active)

    @strawberry.field(description="position in the queue, while QUEUED")
    async def queue_position(self, info: Info) -> int | None:
        if self.status != DeploymentStatus.QUEUED:
            return None
        return await queue_positions_loader(info.context).load(str(self.id))

    @strawberry.field(description="the pipeline steps run so far, in order")
    async def steps(self, info: Info) -> list[DeploymentStep]:
        rows = await events_loader(info.context).load(str(self.id))
        return [DeploymentStep.from_row(r) for r in rows]

    @strawberry.field(description="log lines after afterSeq, at most limit")
    async def logs(self, after_seq: int | None = 0, limit: int | None = 1000) -> list[LogLine]:
        after_seq, limit = after_seq or 0, 1000 if limit is None else limit
        if after_seq < 0 or not 1 <= limit <= MAX_LOG_LIMIT:
            raise BadInput(f"afterSeq must be >= 0 and limit within 1..{MAX_LOG_LIMIT}")
        lines = await run_in_threadpool(read_after, Path(self.log_path), after_seq, limit)
        return lines  # type: ignore[return-value]  # app.types.LogLine has the same fields

    @classmethod
    def from_row(cls, row: DeploymentRow) -> Deployment:
        return cls(
            id=strawberry.ID(row.id),
            application_id=strawberry.ID(row.application_id),
            title=row.title,
            description=row.description,
            status=DeploymentStatus(row.status),
            trigger=DeploymentTrigger(row.trigger),
            commit_sha=row.commit_sha,
            requested_commit_sha=row.requested_sha,
            source_ref=row.source_ref,
            image_ref=row.image_ref,
            log_path=row.log_path,
            pid=row.pid,
            server_id=_opt_id(row.server_id),
            build_server_id=_opt_id(row.build_server_id),
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            error_message=row.error_message,
            scheduled_at=row.scheduled_at,
            cancel_requested=bool(row.cancel_requested),
            rollback_of_id=_opt_id(row.rollback_of_id),
            has_rollback_point=bool(
                row.release_spec_enc and (row.rollback_image or row.rollback_registry_ref)
            ),
        )


def _opt_id(value: str | None) -> strawberry.ID | None:
    return strawberry.ID(value) if value else None


@strawberry.type
class QueueJob:
    deployment: Deployment
    state: QueueState
    position: int | None


DeploymentConnection = Connection[Deployment]
