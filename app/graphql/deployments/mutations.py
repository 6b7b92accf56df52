"""Deployment mutations: deploy and redeploy (rebuild without fetching)."""

from __future__ import annotations

import strawberry
from starlette.concurrency import run_in_threadpool

from app.graphql.context import Info
from app.graphql.deployments.types import Deployment
from app.graphql.permissions import CanDeploy
from app.queue.submit import submit
from app.types import DeploymentTrigger


async def _submit(
    info: Info,
    application_id: strawberry.ID,
    trigger: DeploymentTrigger,
    title: str | None,
    description: str | None,
) -> Deployment:
    state = info.context.state
    row = await run_in_threadpool(
        lambda: submit(
            settings=state.settings,
            db=state.db,
            bus=state.hub.bus,
            queue=state.queue,
            application_id=str(application_id),
            trigger=trigger,
            title=title,
            description=description,
        )
    )
    return Deployment.from_row(row)


@strawberry.type
class DeploymentMutations:
    @strawberry.mutation(permission_classes=[CanDeploy], description="fetch, build, release")
    async def deploy_application(
        self,
        info: Info,
        application_id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
    ) -> Deployment:
        return await _submit(info, application_id, DeploymentTrigger.MANUAL, title, description)

    @strawberry.mutation(
        permission_classes=[CanDeploy], description="rebuild the fetched source, no fetch"
    )
    async def redeploy_application(
        self,
        info: Info,
        application_id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
    ) -> Deployment:
        return await _submit(info, application_id, DeploymentTrigger.REBUILD, title, description)
