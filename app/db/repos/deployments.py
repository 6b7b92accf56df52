"""Queries on deployments: history, queue, claim and finish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, aliased

from app.db.base import utcnow
from app.db.models import Application, Deployment, DeploymentEvent, Server
from app.db.repos import paging
from app.db.repos.paging import Page, Window
from app.errors import NotFound
from app.metrics import instruments as metrics
from app.types import FINISHED, ApplicationStatus, DeploymentStatus

ACTIVE = (DeploymentStatus.QUEUED.value, DeploymentStatus.RUNNING.value)


def get(session: Session, deployment_id: str) -> Deployment | None:
    return session.get(Deployment, deployment_id)


def require(session: Session, deployment_id: str) -> Deployment:
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return dep


def add(session: Session, deployment: Deployment) -> Deployment:
    session.add(deployment)
    session.flush()
    return deployment


def page(
    session: Session,
    *,
    application_id: str | None,
    statuses: Sequence[str] | None,
    window: Window,
) -> Page[Deployment]:
    """Newest first (ids sort by creation), in either direction (``paging.Window``)."""
    query = select(Deployment)
    if application_id is not None:
        query = query.where(Deployment.application_id == application_id)
    if statuses:
        query = query.where(Deployment.status.in_(statuses))
    return paging.page(session, query, Deployment.id, window)


def pages(
    session: Session, *, application_ids: Sequence[str], window: Window
) -> dict[str, Page[Deployment]]:
    """``page`` of each application, in one statement: what ``page`` gives each of them."""
    return paging.ranked_pages(
        session, Deployment, group=Deployment.application_id, keys=application_ids, window=window
    )


def active(session: Session, *, server_id: str | None = None) -> Sequence[Deployment]:
    """QUEUED and RUNNING deployments, oldest first."""
    query = select(Deployment).where(Deployment.status.in_(ACTIVE)).order_by(Deployment.id)
    if server_id is not None:
        query = query.where(Deployment.server_id == server_id)
    return session.scalars(query).all()


def queue_positions(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """1-based position among all QUEUED deployments, for the QUEUED ones in ``ids``."""
    queued = session.scalars(
        select(Deployment.id)
        .where(Deployment.status == DeploymentStatus.QUEUED.value)
        .order_by(Deployment.id)
    ).all()
    wanted = set(ids)
    return {dep_id: n for n, dep_id in enumerate(queued, start=1) if dep_id in wanted}


def claim(
    session: Session, *, deployment_id: str, pid: int, worker: str, default_limit: int
) -> Deployment | None:
    """QUEUED -> RUNNING if it heads its application's queue and its build server has room.

    Run in a ``locking`` session: the application row and the build server's advisory lock
    (PostgreSQL), or the database write lock (SQLite), make check-then-claim one step.
    """
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        return None
    if dep.status == DeploymentStatus.SCHEDULED.value and _due(dep):
        dep.status = DeploymentStatus.QUEUED.value
        session.flush()
    if dep.status != DeploymentStatus.QUEUED.value:
        return None
    app = _lock_application(session, dep.application_id)
    _lock_build_server(session, dep.build_server_id)
    other = aliased(Deployment)
    ahead = session.scalar(
        select(func.count())
        .select_from(other)
        .where(other.application_id == dep.application_id, other.id != dep.id)
        .where(
            (other.status == DeploymentStatus.RUNNING.value)
            | ((other.status == DeploymentStatus.QUEUED.value) & (other.id < dep.id))
        )
    )
    limit = build_limit(session, dep.build_server_id, default_limit)
    if ahead or _running_on(session, dep.build_server_id) >= limit:
        return None
    now = utcnow()
    claimed = session.execute(
        update(Deployment)
        .where(Deployment.id == dep.id, Deployment.status == DeploymentStatus.QUEUED.value)
        .values(status="RUNNING", started_at=now, heartbeat_at=now, pid=pid, worker=worker)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    app.status = ApplicationStatus.RUNNING.value
    session.flush()
    session.refresh(dep)
    return dep


def _due(dep: Deployment) -> bool:
    return dep.scheduled_at is None or dep.scheduled_at <= utcnow()


def build_limit(session: Session, build_server_id: str | None, default: int) -> int:
    """Deployments allowed at once on a build server (the local engine: the setting)."""
    if build_server_id is None:
        return default
    server = session.get(Server, build_server_id)
    return server.max_concurrent_builds if server is not None else default


def _lock_application(session: Session, app_id: str) -> Application:
    app = session.scalars(
        select(Application).where(Application.id == app_id).with_for_update()
    ).one()
    return app


def _lock_build_server(session: Session, build_server_id: str | None) -> None:
    """Serialise claims per build server on PostgreSQL (SQLite's write lock already does)."""
    if session.get_bind().dialect.name == "postgresql":
        key = f"slipway:build:{build_server_id or 'local'}"
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


def _running_on(session: Session, build_server_id: str | None) -> int:
    query = select(func.count()).where(Deployment.status == DeploymentStatus.RUNNING.value)
    if build_server_id is None:
        query = query.where(Deployment.build_server_id.is_(None))
    else:
        query = query.where(Deployment.build_server_id == build_server_id)
    return session.scalar(query) or 0


def queued_duplicate(
    session: Session,
    application_id: str,
    trigger: str,
    requested_sha: str | None = None,
    source_ref: str | None = None,
) -> Deployment | None:
    """A QUEUED, not yet started deployment of the application with the same trigger
    asking for the same commit and ref."""
    return session.scalars(
        select(Deployment)
        .where(
            Deployment.application_id == application_id,
            Deployment.status == DeploymentStatus.QUEUED.value,
            Deployment.trigger == trigger,
            Deployment.requested_sha.is_(None)
            if requested_sha is None
            else Deployment.requested_sha == requested_sha,
            Deployment.source_ref.is_(None)
            if source_ref is None
            else Deployment.source_ref == source_ref,
        )
        .order_by(Deployment.id)
        .limit(1)
    ).first()


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt: stop (with why), and whether the row is no longer ours."""

    stop: str | None = None
    gone: bool = False


def heartbeat(session: Session, deployment_id: str) -> Beat:
    """Refresh the heartbeat of a RUNNING deployment and read any cancel request."""
    session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status == "RUNNING")
        .values(heartbeat_at=utcnow())
    )
    row = session.execute(
        select(Deployment.status, Deployment.cancel_requested, Deployment.cancel_reason).where(
            Deployment.id == deployment_id
        )
    ).one_or_none()
    if row is None:
        return Beat("the deployment was deleted", gone=True)
    status, requested, reason = row
    if status != DeploymentStatus.RUNNING.value:
        return Beat(f"the deployment was already ended elsewhere ({status})", gone=True)
    return Beat((reason or "cancelled") if requested else None)


def request_cancel(session: Session, dep: Deployment, reason: str) -> None:
    """Ask the worker running ``dep`` to stop (it notices within one heartbeat)."""
    dep.cancel_requested = True
    dep.cancel_reason = reason
    session.flush()


def finish(
    session: Session,
    *,
    deployment_id: str,
    status: DeploymentStatus,
    error: str | None = None,
    expect: Sequence[DeploymentStatus] = (DeploymentStatus.RUNNING,),
) -> Deployment | None:
    """Record the end of a deployment and carry its outcome to the application.

    Only a deployment still in one of ``expect`` is changed (None otherwise): whoever
    finished it first (the worker, a cancel, a kill, the watchdog) decides its status.
    """
    dep = session.scalars(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the status as of the lock, not a cache
    ).one_or_none()
    if dep is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    was = DeploymentStatus(dep.status)
    if was not in expect:
        return None
    dep.status = status.value
    dep.finished_at = utcnow()
    dep.error_message = error
    dep.pid = None
    app = session.get(Application, dep.application_id)
    if app is not None and was is DeploymentStatus.RUNNING:  # a queued one never moved it
        app.status = _app_status_after(session, dep, status).value
    session.flush()
    counted = (status.value, dep.trigger)  # once committed: a rolled-back end never happened
    event.listen(
        session, "after_commit", lambda _: metrics.deployment_finished(*counted), once=True
    )
    return dep


def _app_status_after(
    session: Session, dep: Deployment, status: DeploymentStatus
) -> ApplicationStatus:
    if status is DeploymentStatus.DONE:
        return ApplicationStatus.DONE
    if status is DeploymentStatus.ERROR:
        return ApplicationStatus.ERROR
    # Cancelled: back to what the last deployment that ran to an end left it.
    previous = session.scalar(
        select(Deployment.status)
        .where(
            Deployment.application_id == dep.application_id,
            Deployment.id != dep.id,
            Deployment.status.in_([DeploymentStatus.DONE.value, DeploymentStatus.ERROR.value]),
        )
        .order_by(Deployment.id.desc())
        .limit(1)
    )
    return ApplicationStatus(previous) if previous else ApplicationStatus.IDLE


def running(session: Session) -> Sequence[Deployment]:
    return session.scalars(
        select(Deployment).where(Deployment.status == DeploymentStatus.RUNNING.value)
    ).all()


def stale_running(session: Session, *, older_than: timedelta) -> Sequence[Deployment]:
    """RUNNING deployments whose worker stopped beating: their process is gone."""
    limit: datetime = utcnow() - older_than
    return session.scalars(
        select(Deployment).where(
            Deployment.status == DeploymentStatus.RUNNING.value, Deployment.heartbeat_at < limit
        )
    ).all()


def queued_heads(session: Session) -> Sequence[str]:
    """The oldest QUEUED deployment of each application: the only ones that may start next."""
    return session.scalars(
        select(func.min(Deployment.id))
        .where(Deployment.status == DeploymentStatus.QUEUED.value)
        .group_by(Deployment.application_id)
        .order_by(func.min(Deployment.id))
    ).all()


def promote_due(session: Session) -> Sequence[str]:
    """SCHEDULED deployments whose time has come become QUEUED; returns their ids."""
    due = session.scalars(
        select(Deployment.id).where(
            Deployment.status == DeploymentStatus.SCHEDULED.value,
            Deployment.scheduled_at <= utcnow(),
        )
    ).all()
    if due:
        session.execute(
            update(Deployment)
            .where(Deployment.id.in_(due), Deployment.status == DeploymentStatus.SCHEDULED.value)
            .values(status=DeploymentStatus.QUEUED.value)
        )
    return due


def cancellable(session: Session, application_id: str) -> Sequence[Deployment]:
    """The application's QUEUED, SCHEDULED and RUNNING deployments, oldest first."""
    return session.scalars(
        select(Deployment)
        .where(
            Deployment.application_id == application_id,
            Deployment.status.in_([*ACTIVE, DeploymentStatus.SCHEDULED.value]),
        )
        .order_by(Deployment.id)
    ).all()


def recent_finished(session: Session, *, since: datetime, limit: int) -> Sequence[Deployment]:
    return session.scalars(
        select(Deployment)
        .where(
            Deployment.status.in_([s.value for s in FINISHED]),
            Deployment.finished_at >= since,
        )
        .order_by(Deployment.finished_at.desc())
        .limit(limit)
    ).all()


def scheduled(session: Session) -> Sequence[Deployment]:
    return session.scalars(
        select(Deployment)
        .where(Deployment.status == DeploymentStatus.SCHEDULED.value)
        .order_by(Deployment.scheduled_at)
    ).all()


def prunable(session: Session, application_id: str, *, keep: int) -> Sequence[Deployment]:
    """Finished deployments beyond the newest ``keep`` (``keep=0``: all finished ones)."""
    return session.scalars(
        select(Deployment)
        .where(
            Deployment.application_id == application_id,
            Deployment.status.in_([s.value for s in FINISHED]),
        )
        .order_by(Deployment.id.desc())
        .offset(keep)
    ).all()


def delete(session: Session, ids: Sequence[str]) -> None:
    if ids:
        session.execute(sa_delete(DeploymentEvent).where(DeploymentEvent.deployment_id.in_(ids)))
        session.execute(sa_delete(Deployment).where(Deployment.id.in_(ids)))


def existing_ids(session: Session, ids: Sequence[str]) -> set[str]:
    return set(session.scalars(select(Deployment.id).where(Deployment.id.in_(ids))).all())


def latest_fetched(session: Session, application_id: str) -> Deployment | None:
    """The newest deployment that fetched a commit (what a rebuild reuses)."""
    return session.scalars(
        select(Deployment)
        .where(Deployment.application_id == application_id, Deployment.commit_sha.is_not(None))
        .order_by(Deployment.id.desc())
        .limit(1)
    ).first()


def latest_done(session: Session, application_id: str) -> Deployment | None:
    """The application's newest DONE deployment: the version running now."""
    return session.scalars(
        select(Deployment)
        .where(
            Deployment.application_id == application_id,
            Deployment.status == DeploymentStatus.DONE.value,
        )
        .order_by(Deployment.id.desc())
        .limit(1)
    ).first()


def forget_rollback_point(session: Session, deployment_id: str) -> None:
    """Its image is gone: it can no longer be rolled back to (``canRollback`` false)."""
    session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id)
        .values(rollback_image=None, rollback_registry_ref=None, rollback_registry_id=None)
    )


def rollback_refusal(
    dep: Deployment | None, app: Application | None, deployment_id: str
) -> str | None:
    """Why ``dep`` cannot be rolled back to, or None when it can (``canRollback``)."""
    if dep is None or app is None:
        return f"deployment {deployment_id} does not exist"
    if not app.rollback_active:
        return f"rollbackActive is off for application {app.name!r}: it keeps no rollback points"
    if dep.status != DeploymentStatus.DONE.value:
        state = "is still running" if dep.status == "RUNNING" else f"ended {dep.status}"
        if dep.status in ("QUEUED", "SCHEDULED"):
            state = f"is {dep.status} (it has not run yet)"
        return f"deployment {deployment_id} {state}: only a DONE deployment can be rolled back to"
    if not dep.release_spec_enc or not (dep.rollback_image or dep.rollback_registry_ref):
        return (
            f"deployment {deployment_id} has no rollback point left (its image was pruned or "
            "removed, or rollbackActive was off when it ran)"
        )
    return None


def with_references(session: Session, application_id: str | None = None) -> Sequence[Any]:
    """The image and rollback-point columns of the deployments (of one application, or
    all) that name any: what retention must keep. Columns only, not whole rows."""
    query = select(
        Deployment.image_ref,
        Deployment.registry_id,
        Deployment.rollback_image,
        Deployment.rollback_registry_ref,
        Deployment.rollback_registry_id,
    ).where(
        Deployment.image_ref.is_not(None)
        | Deployment.rollback_image.is_not(None)
        | Deployment.rollback_registry_ref.is_not(None)
    )
    if application_id is not None:
        query = query.where(Deployment.application_id == application_id)
    return session.execute(query).all()
