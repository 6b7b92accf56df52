"""Live deployment logs and state: the current state first, then every change, then done.

The status subscriptions yield after every announcement; ``app.graphql.distinct`` then
sends a message only when the subscriber's own selection changed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import strawberry

from app.db.repos import applications, deployments
from app.engine.events import application_topic, deployment_topic
from app.errors import BadInput
from app.graphql.applications.types import Application
from app.graphql.context import Context, Info
from app.graphql.deployments.types import Deployment, LogLine
from app.graphql.permissions import CanRead
from app.logs.reader import follow
from app.types import DeploymentStatus as Status


async def _deployment(ctx: Context, deployment_id: str) -> Deployment:
    return Deployment.from_row(await ctx.db(deployments.require, deployment_id))


def _fresh(ctx: Context) -> Context:
    """Forget the context's dataloaders before an event is executed: a WebSocket's context
    lasts as long as the connection, and its loaders would answer every later event (the
    steps of a deployment, an application's deployments) from the first event's cache."""
    ctx.loaders.clear()
    return ctx


@strawberry.type
class DeploymentSubscriptions:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="lines after afterSeq (or an SSE Last-Event-ID) in batches, in seq "
        "order; completes after the last. Over SSE each event's id is its last seq",
    )
    async def deployment_logs(
        self, info: Info, deployment_id: strawberry.ID, after_seq: int | None = 0
    ) -> AsyncGenerator[list[LogLine], None]:
        after_seq = after_seq or 0
        if after_seq < 0:
            raise BadInput("afterSeq must be >= 0")
        ctx = info.context
        after_seq = max(after_seq, ctx.resume_position())  # an SSE client reconnecting
        dep = await _deployment(ctx, str(deployment_id))

        async def finished() -> bool:
            return Status((await _deployment(ctx, str(deployment_id))).status.value).finished

        async for batch in follow(
            hub=ctx.state.hub,
            path=Path(dep.log_path),
            deployment_id=str(dep.id),
            after_seq=after_seq,
            is_finished=finished,
        ):
            if batch:
                ctx.stream_position = batch[-1].seq  # the SSE event's id: resume after it
            yield batch  # type: ignore[misc]  # app.types.LogLine has LogLine's fields

    @strawberry.subscription(permission_classes=[CanRead])
    async def deployment_status(
        self, info: Info, deployment_id: strawberry.ID
    ) -> AsyncGenerator[Deployment, None]:
        ctx = info.context
        sub = await ctx.state.hub.subscribe(deployment_topic(str(deployment_id)))
        try:
            current = await _deployment(ctx, str(deployment_id))
            _fresh(ctx)
            yield current
            while not Status(current.status.value).finished:
                announced = await sub.next(timeout=5.0)  # a change, or time to look again
                latest = await _deployment(ctx, str(deployment_id))
                if announced or latest != current:  # sent only if the selection changed
                    _fresh(ctx)
                    yield latest
                current = latest
        finally:
            await sub.close()

    @strawberry.subscription(permission_classes=[CanRead])
    async def application_status(
        self, info: Info, application_id: strawberry.ID
    ) -> AsyncGenerator[Application, None]:
        ctx = info.context
        sub = await ctx.state.hub.subscribe(application_topic(str(application_id)))
        try:
            current = Application.from_row(await ctx.db(applications.require, str(application_id)))
            _fresh(ctx)
            yield current
            while True:
                announced = await sub.next(timeout=30.0)
                row = await ctx.db(applications.get, str(application_id))
                if row is None:
                    return
                latest = Application.from_row(row)
                if announced or latest != current:  # sent only if the selection changed
                    _fresh(ctx)
                    yield latest
                current = latest
        finally:
            await sub.close()
