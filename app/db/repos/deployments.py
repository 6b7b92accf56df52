"""Queries on deployments: history, queue, claim and finish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from app.db.base import utcnow
from app.db.models import Application, Deployment
from app.errors import NotFound
from app.types import ApplicationStatus, DeploymentStatus

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
    first: int,
    after: str | None,
) -> tuple[Sequence[Deployment], bool]:
    """Newest first (ids sort by creation); ``after`` is the previous page's last id."""
    query = select(Deployment).order_by(Deployment.id.desc()).limit(first + 1)
    if application_id is not None:
        query = query.where(Deployment.application_id == application_id)
    if statuses:
        query = query.where(Deployment.status.in_(statuses))
    if after:
        query = query.where(Deployment.id < after)
    rows = session.scalars(query).all()
    return rows[:first], len(rows) > first


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
    session: Session, *, deployment_id: str, pid: int, worker: str, max_running: int
) -> Deployment | None:
    """QUEUED -> RUNNING if it heads its application's queue and its build server has room."""
    dep = session.get(Deployment, deployment_id)
    if dep is None or dep.status != DeploymentStatus.QUEUED.value:
        return None
    app = _lock_application(session, dep.application_id)
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
    if ahead or _running_on(session, dep.build_server_id) >= max_running:
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


def _lock_application(session: Session, app_id: str) -> Application:
    app = session.scalars(
        select(Application).where(Application.id == app_id).with_for_update()
    ).one()
    return app


def _running_on(session: Session, build_server_id: str | None) -> int:
    query = select(func.count()).where(Deployment.status == DeploymentStatus.RUNNING.value)
    if build_server_id is None:
        query = query.where(Deployment.build_server_id.is_(None))
    else:
        query = query.where(Deployment.build_server_id == build_server_id)
    return session.scalar(query) or 0


def heartbeat(session: Session, deployment_id: str) -> bool:
    """Refresh the heartbeat; returns True when cancellation was requested."""
    session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status == "RUNNING")
        .values(heartbeat_at=utcnow())
    )
    return bool(
        session.scalar(select(Deployment.cancel_requested).where(Deployment.id == deployment_id))
    )


def finish(
    session: Session, *, deployment_id: str, status: DeploymentStatus, error: str | None = None
) -> Deployment:
    """Record the end of a deployment and carry its outcome to the application."""
    dep = require(session, deployment_id)
    dep.status = status.value
    dep.finished_at = utcnow()
    dep.error_message = error
    dep.pid = None
    app = session.get(Application, dep.application_id)
    if app is not None:
        app.status = {
            DeploymentStatus.DONE: ApplicationStatus.DONE,
            DeploymentStatus.ERROR: ApplicationStatus.ERROR,
        }.get(status, ApplicationStatus.IDLE).value
    session.flush()
    return dep


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


def latest_fetched(session: Session, application_id: str) -> Deployment | None:
    """The newest deployment that fetched a commit (what a rebuild reuses)."""
    return session.scalars(
        select(Deployment)
        .where(Deployment.application_id == application_id, Deployment.commit_sha.is_not(None))
        .order_by(Deployment.id.desc())
        .limit(1)
    ).first()
