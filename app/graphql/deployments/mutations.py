"""Deployment mutations: deploy, redeploy, cancel, kill, clear."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.file_uploads import Upload

from app.db.repos import applications, deployments
from app.engine import control
from app.engine.retention import PointRemover, prune_application
from app.errors import BadInput
from app.graphql.context import Info
from app.graphql.deployments.drops import accept_drop
from app.graphql.deployments.types import Deployment
from app.graphql.limits import check_description, check_length, check_title
from app.graphql.permissions import CanDeploy
from app.queue.submit import SourceOverride, submit
from app.sources.validate import validate_commit_sha, validate_ref
from app.types import DeploymentTrigger

DEDUP = (
    " If the application already has a deployment with this trigger queued and not yet "
    "started, that deployment is returned and no second one is queued."
)


async def _submit(
    info: Info,
    application_id: strawberry.ID,
    trigger: DeploymentTrigger,
    title: str | None,
    description: str | None,
    scheduled_at: datetime | None = None,
    source: SourceOverride | None = None,
    clean_cache: bool | None = None,
) -> Deployment:
    state = info.context.state
    title, description = check_title(title), check_description(description)
    result = await run_in_threadpool(
        lambda: submit(
            settings=state.settings,
            db=state.db,
            bus=state.hub.bus,
            queue=state.queue,
            application_id=str(application_id),
            trigger=trigger,
            title=title,
            description=description,
            scheduled_at=scheduled_at,
            source=source,
            clean_cache=clean_cache,
        )
    )
    return Deployment.from_row(result.deployment)


CLEAN_CACHE = (
    "true: this build runs without the layer cache and pulls its base images fresh; "
    "false: with cache even if the application has cleanCache; null: the application's "
    "cleanCache"
)


def _override(sha: str | None, branch: str | None, tag: str | None) -> SourceOverride | None:
    """What ``deployApplication`` was asked to fetch; BadInput for unusable values."""
    if branch is not None and tag is not None:
        raise BadInput("give branch or tag, not both")
    if sha is None and branch is None and tag is None:
        return None
    ref = validate_ref(check_length(tag, "tag", 255), "tag") if tag is not None else None
    if branch is not None:
        ref = validate_ref(check_length(branch, "branch", 255))
    return SourceOverride(
        sha=validate_commit_sha(sha) if sha is not None else None,
        ref=ref,
        ref_kind="tag" if tag is not None else "branch",
    )


def _who(info: Info) -> str:
    return f"API key {info.context.who().name!r}"


@strawberry.type
class DeploymentMutations:
    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Fetch, build, release and verify. With scheduledAt in the future the "
        "deployment is SCHEDULED and joins the queue at that time." + DEDUP,
    )
    async def deploy_application(
        self,
        info: Info,
        application_id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
        scheduled_at: datetime | None = None,
        commit_sha: Annotated[
            str | None,
            strawberry.argument(
                description="Deploy exactly this commit (7-64 hex digits) instead of the "
                "head of the application's branch."
            ),
        ] = None,
        branch: Annotated[
            str | None,
            strawberry.argument(description="Deploy this branch instead of the application's."),
        ] = None,
        tag: Annotated[str | None, strawberry.argument(description="Deploy this tag.")] = None,
        clean_cache: Annotated[bool | None, strawberry.argument(description=CLEAN_CACHE)] = None,
    ) -> Deployment:
        return await _submit(
            info,
            application_id,
            DeploymentTrigger.MANUAL,
            title,
            description,
            scheduled_at,
            _override(commit_sha, branch, tag),
            clean_cache,
        )

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Rebuild the source fetched last, without fetching. cleanCache: as on "
        "deployApplication." + DEDUP,
    )
    async def redeploy_application(
        self,
        info: Info,
        application_id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
        clean_cache: bool | None = None,
    ) -> Deployment:
        return await _submit(
            info,
            application_id,
            DeploymentTrigger.REBUILD,
            title,
            description,
            clean_cache=clean_cache,
        )

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Deploy an uploaded ZIP (GraphQL multipart request) to a DROP "
        "application. The archive is checked before anything is queued: size, entry count, "
        "total and per-entry expansion (zip bombs), names (no absolute paths, '..', links, "
        "devices, duplicates); a bad one is BAD_USER_INPUT and queues nothing. A single "
        "top-level folder is stripped; dropBuildPath picks the folder to build inside it.",
    )
    async def drop_deployment(
        self,
        info: Info,
        application_id: strawberry.ID,
        zip: Upload,  # the contract's name; shadows the builtin in this method only
        drop_build_path: str | None = "/",
    ) -> Deployment:
        result = await accept_drop(
            info.context.state,
            application_id=str(application_id),
            upload=zip,
            build_path=drop_build_path,
        )
        return Deployment.from_row(result.deployment)

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Cancel the application's queued and scheduled deployments at once "
        "(CANCELLED), and stop its running one within a few seconds: its clone or build "
        "processes are killed, a release under way is rolled back to the previous service "
        "spec (a service it created is removed), then it is CANCELLED and the application "
        "status is what it was before. Returns the running deployment (poll or subscribe "
        "for its end), else the last one cancelled, else null.",
    )
    async def cancel_deployment(
        self, info: Info, application_id: strawberry.ID
    ) -> Deployment | None:
        state = info.context.state
        await info.context.db(applications.require, str(application_id))
        row = await run_in_threadpool(
            lambda: control.cancel_application(
                db=state.db, bus=state.hub.bus, application_id=str(application_id), who=_who(info)
            )
        )
        return Deployment.from_row(row) if row else None

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Kill a RUNNING deployment and mark it ERROR. Its worker SIGKILLs the "
        "deployment's processes at its next heartbeat; a worker that does not respond in "
        "time is killed by its recorded pid when on this host. Returns the ended deployment.",
    )
    async def kill_deployment_process(self, info: Info, deployment_id: strawberry.ID) -> Deployment:
        state = info.context.state
        grace = state.settings.heartbeat_interval * 2 + 5
        row = await run_in_threadpool(
            lambda: control.kill(
                db=state.db,
                bus=state.hub.bus,
                deployment_id=str(deployment_id),
                who=_who(info),
                grace=grace,
            )
        )
        return Deployment.from_row(row)

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Roll back to an earlier DONE deployment of its application: queues a new "
        "deployment (trigger ROLLBACK, rollbackOfId set) that skips fetch and build, releases "
        "that deployment's image with the snapshot of what it released (env, ports, mounts, "
        "limits, health check, command, replicas) and verifies it like any deployment; it "
        "queues behind a running one and can be cancelled. Push and tag webhooks then skip "
        "until the next deployApplication, redeployApplication or dropDeployment. "
        "BAD_USER_INPUT (saying why) for an unknown deployment, one of another application "
        "than applicationId, one not DONE (queued, running, ERROR, CANCELLED), one whose "
        "rollback point is gone (pruned), or an application with rollbackActive off.",
    )
    async def rollback_deployment(
        self,
        info: Info,
        deployment_id: strawberry.ID,
        application_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="when given, the deployment must belong to this application"
            ),
        ] = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Deployment:
        state = info.context.state
        title, description = check_title(title), check_description(description)
        target_id = check_length(str(deployment_id), "deploymentId", 64)
        target = await info.context.db(deployments.get, target_id)
        if target is None:
            raise BadInput(f"deployment {target_id} does not exist")
        if application_id is not None and str(application_id) != target.application_id:
            raise BadInput(
                f"deployment {target_id} belongs to another application, not {application_id}"
            )
        result = await run_in_threadpool(
            lambda: submit(
                settings=state.settings,
                db=state.db,
                bus=state.hub.bus,
                queue=state.queue,
                application_id=target.application_id,
                trigger=DeploymentTrigger.ROLLBACK,
                title=title or f"Rollback to deployment {target_id}",
                description=description,
                rollback_of=target_id,
            )
        )
        return Deployment.from_row(result.deployment)

    @strawberry.mutation(
        permission_classes=[CanDeploy],
        description="Delete every finished deployment of the application (rows and log "
        "files, and their rollback points: images and registry tags no longer referenced; "
        "the running version's image and tags stay). Running, queued and scheduled "
        "deployments stay. Returns how many were deleted.",
    )
    async def clear_deployments(self, info: Info, application_id: strawberry.ID) -> int:
        state = info.context.state
        await info.context.db(applications.require, str(application_id))
        points = PointRemover(cipher=state.cipher, runtime=state.runtime, registry=state.registry)
        return await run_in_threadpool(
            lambda: prune_application(state.db, str(application_id), keep=0, points=points)
        )
