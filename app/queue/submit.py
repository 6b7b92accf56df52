"""Creating a deployment: a QUEUED (or SCHEDULED) row, a state event, then a message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app.db.base import utcnow
from app.db.models import Deployment
from app.db.repos import applications, deployments
from app.db.session import Database
from app.engine.events import announce
from app.errors import BadInput, Conflict
from app.ids import new_id
from app.logs.bus.base import Bus
from app.queue.actors import DeploymentQueue
from app.settings import Settings
from app.types import GIT_SOURCES, DeploymentStatus, DeploymentTrigger, SourceType

log = logging.getLogger(__name__)
DEFAULT_TITLES = {
    DeploymentTrigger.MANUAL: "Manual deployment",
    DeploymentTrigger.REBUILD: "Rebuild deployment",
    DeploymentTrigger.DROP: "Drop deployment",
}
# A deploy asked for by a person: after a rollback, webhooks deploy again once one is queued.
MANUAL_TRIGGERS = frozenset(
    {DeploymentTrigger.MANUAL, DeploymentTrigger.REBUILD, DeploymentTrigger.DROP}
)


REBUILDABLE = GIT_SOURCES | {SourceType.DROP}


@dataclass(frozen=True)
class SourceOverride:
    """What one deployment fetches instead of the application's branch head."""

    sha: str | None = None  # an exact commit
    ref: str | None = None  # a branch or tag name
    ref_kind: str = "branch"  # "branch" | "tag"
    build_path: str | None = None  # DROP: the folder inside the archive


@dataclass(frozen=True)
class Submitted:
    deployment: Deployment
    duplicate: bool  # an equal request was already queued: this is that one


def submit(
    *,
    settings: Settings,
    db: Database,
    bus: Bus,
    queue: DeploymentQueue,
    application_id: str,
    trigger: DeploymentTrigger,
    title: str | None = None,
    description: str | None = None,
    scheduled_at: datetime | None = None,
    source: SourceOverride | None = None,
    deployment_id: str | None = None,
    rollback_of: str | None = None,
    clean_cache: bool | None = None,
) -> Submitted:
    """Queue a deployment of the application; the worker decides when it may start.

    A request equal to one already QUEUED and not started (same application, same
    trigger) returns that one instead of queueing a duplicate. ``scheduled_at`` in the
    future makes a SCHEDULED deployment that joins the queue at that time. ``source``
    narrows what is fetched (a commit, a tag or branch, a drop's build folder); a queued
    duplicate must ask for the same source. ``deployment_id`` (a fresh :func:`new_id`)
    lets the caller put files where the worker will look before the message is sent.

    ``rollback_of`` (trigger ROLLBACK): the DONE deployment of this application whose
    rollback point is released again, checked in the same locked transaction (BadInput
    saying why it cannot be); the application is then pinned to the rollback, so push and
    tag webhooks skip, until a manual deployment (MANUAL, REBUILD, DROP) is queued.
    ``clean_cache`` (None: the application's setting) builds this one without cache; a
    duplicate still queued is made a clean build when this request asks for one.
    """
    source = source or SourceOverride()
    if scheduled_at is not None and scheduled_at <= utcnow():
        scheduled_at = None
    with db.session(locking=True) as session:
        app = applications.lock(session, application_id)
        kind = SourceType(app.source_type)
        if trigger is DeploymentTrigger.REBUILD and kind not in REBUILDABLE:
            raise Conflict(f"a {kind.value} application has no source to rebuild; deploy it")
        if trigger in MANUAL_TRIGGERS:  # also when an equal one is already queued
            app.rollback_pinned_id = None
        if trigger is DeploymentTrigger.ROLLBACK:
            target = deployments.get(session, rollback_of or "")
            if target is not None and target.application_id != app.id:
                raise BadInput(
                    f"deployment {rollback_of} belongs to another application, not {app.name!r}"
                )
            refusal = deployments.rollback_refusal(target, app, str(rollback_of))
            if refusal:
                raise BadInput(refusal)
        elif scheduled_at is None and trigger is not DeploymentTrigger.DROP:
            existing = deployments.queued_duplicate(
                session, app.id, trigger.value, source.sha, source.ref
            )
            if existing is not None:
                if clean_cache and not existing.clean_cache:
                    existing.clean_cache = True
                return Submitted(existing, duplicate=True)
        dep_id = deployment_id or new_id()  # a drop stores its archive under the id first
        status = DeploymentStatus.SCHEDULED if scheduled_at else DeploymentStatus.QUEUED
        dep = deployments.add(
            session,
            Deployment(
                id=dep_id,
                application_id=app.id,
                title=title or DEFAULT_TITLES.get(trigger, f"{trigger.value.title()} deployment"),
                description=description,
                status=status.value,
                trigger=trigger.value,
                log_path=str((settings.logs_dir / app.app_name / f"{dep_id}.log").resolve()),
                server_id=app.server_id,
                build_server_id=app.build_server_id,
                scheduled_at=scheduled_at,
                requested_sha=source.sha,
                source_ref=source.ref,
                source_ref_kind=source.ref_kind if source.ref else None,
                build_path=source.build_path,
                rollback_of_id=rollback_of if trigger is DeploymentTrigger.ROLLBACK else None,
                clean_cache=clean_cache,
            ),
        )
        if trigger is DeploymentTrigger.ROLLBACK:
            app.rollback_pinned_id = dep.id
    announce(bus, deployment_id=dep.id, application_id=dep.application_id, status=status.value)
    try:
        if scheduled_at is None:
            queue.send(dep.id)
        else:
            queue.send_at(dep.id, scheduled_at)
    except Exception as exc:  # the row is committed: the watchdog sends queue heads again
        log.warning("deployment %s is queued, its message not sent (%s)", dep.id, exc)
    return Submitted(dep, duplicate=False)
