"""Queries of the runtime monitor: the engine lease and cursor, what is watched, incidents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Application, Deployment, EngineWatch, Incident
from app.types import NotificationEvent


@dataclass(frozen=True, slots=True)
class Watched:
    """An application the monitor follows: its last deployment is DONE and none runs."""

    app_id: str
    app_name: str
    deployment_id: str  # the DONE deployment whose tasks count
    finished_at: datetime
    env_enc: str | None
    replicas: int
    health: str


def acquire(session: Session, *, engine: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease on ``engine`` for ``holder``; False while another holds it.
    Run in a locking session (the row is read for update)."""
    now = utcnow()
    row = session.scalars(
        select(EngineWatch).where(EngineWatch.engine == engine).with_for_update()
    ).first()
    if row is None:
        try:
            with session.begin_nested():
                session.add(EngineWatch(engine=engine, holder=holder, lease_until=_until(now, ttl)))
        except IntegrityError:  # another process made it first; it holds the lease
            return False
        return True
    if row.holder not in (None, holder) and row.lease_until is not None and row.lease_until > now:
        return False
    row.holder = holder
    row.lease_until = _until(now, ttl)
    return True


def release(session: Session, *, engine: str, holder: str) -> None:
    row = session.get(EngineWatch, engine)
    if row is not None and row.holder == holder:
        row.holder = None
        row.lease_until = None


def cursor(session: Session, engine: str) -> int | None:
    """The timeNano of the last event handled on ``engine``."""
    row = session.get(EngineWatch, engine)
    return row.last_event_ns if row is not None else None


def save_cursor(session: Session, *, engine: str, holder: str, event_ns: int) -> bool:
    """Record the last event handled, only while ``holder`` holds the lease."""
    row = session.get(EngineWatch, engine)
    if row is None or row.holder != holder:
        return False
    if row.last_event_ns is None or event_ns > row.last_event_ns:
        row.last_event_ns = event_ns
    return True


def watched(session: Session, app_ids: Sequence[str] | None = None) -> list[Watched]:
    """The applications whose newest finished deployment is DONE and which have no
    deployment RUNNING (those are the deployment's to verify), each with that DONE row."""
    ranked = (
        select(
            Deployment.application_id,
            Deployment.id,
            Deployment.status,
            Deployment.finished_at,
            func.row_number()
            .over(
                partition_by=Deployment.application_id,
                order_by=(Deployment.finished_at.desc(), Deployment.id.desc()),
            )
            .label("rank"),
        )
        .where(Deployment.finished_at.is_not(None))
        .subquery()
    )
    running = select(Deployment.application_id).where(Deployment.status == "RUNNING")
    query = (
        select(Application, ranked.c.id, ranked.c.finished_at)
        .join(ranked, ranked.c.application_id == Application.id)
        .where(ranked.c.rank == 1, ranked.c.status == "DONE")
        .where(Application.id.not_in(running))
    )
    if app_ids is not None:
        query = query.where(Application.id.in_(app_ids))
    return [
        Watched(
            app_id=app.id,
            app_name=app.app_name,
            deployment_id=dep_id,
            finished_at=finished_at,
            env_enc=app.env_enc,
            replicas=app.replicas,
            health=app.health,
        )
        for app, dep_id, finished_at in session.execute(query).all()
    ]


def open_incident(session: Session, app_id: str) -> Incident | None:
    return session.scalars(
        select(Incident)
        .where(Incident.application_id == app_id, Incident.recovered_at.is_(None))
        .order_by(Incident.opened_at.desc())
    ).first()


def incidents(session: Session, app_id: str) -> list[Incident]:
    """An application's incidents, oldest first."""
    return list(
        session.scalars(
            select(Incident)
            .where(Incident.application_id == app_id)
            .order_by(Incident.opened_at, Incident.id)
        )
    )


def unsent(
    session: Session, app_ids: Sequence[str] | None = None
) -> list[tuple[Incident, NotificationEvent, str]]:
    """Incidents whose opening or recovery was not marked handed on, oldest first, with the
    event to send and the application's service name."""
    query = (
        select(Incident, Application.app_name)
        .join(Application, Application.id == Incident.application_id)
        .where(
            Incident.sent_at.is_(None)
            | (Incident.recovered_at.is_not(None) & Incident.recovered_sent_at.is_(None))
        )
        .order_by(Incident.opened_at, Incident.id)
    )
    if app_ids is not None:
        query = query.where(Incident.application_id.in_(app_ids))
    found: list[tuple[Incident, NotificationEvent, str]] = []
    for inc, app_name in session.execute(query).all():
        if inc.sent_at is None:
            found.append((inc, NotificationEvent(inc.kind), app_name))
        if inc.recovered_at is not None and inc.recovered_sent_at is None:
            found.append((inc, NotificationEvent.RECOVERED, app_name))
    return found


def mark_sent(
    session: Session, incident_id: str, event: NotificationEvent, *, at: datetime
) -> bool:
    """Mark ``event`` of the incident handed on; False when it already was (by anyone)."""
    column = (
        Incident.recovered_sent_at if event is NotificationEvent.RECOVERED else Incident.sent_at
    )
    done = session.execute(
        update(Incident)
        .where(Incident.id == incident_id, column.is_(None))
        .values({column: at})
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0))


def unsettled(session: Session) -> list[str]:
    """Applications with an open incident or a health other than HEALTHY (to re-check)."""
    opened = select(Incident.application_id).where(Incident.recovered_at.is_(None))
    rows = session.scalars(
        select(Application.id).where((Application.health != "HEALTHY") | Application.id.in_(opened))
    )
    return list(rows)


def _until(now: datetime, ttl: float) -> datetime:
    return now + timedelta(seconds=ttl)
