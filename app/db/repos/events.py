"""Pipeline step events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import DeploymentEvent
from app.metrics import instruments as metrics


def start(session: Session, *, deployment_id: str, step: str) -> DeploymentEvent:
    event = DeploymentEvent(deployment_id=deployment_id, step=step, outcome="RUNNING")
    session.add(event)
    session.flush()
    return event


def end(session: Session, *, event_id: int, outcome: str, message: str | None = None) -> None:
    event = session.get(DeploymentEvent, event_id)
    if event is None:
        return
    event.finished_at = utcnow()
    event.duration_ms = int((event.finished_at - event.started_at).total_seconds() * 1000)
    event.outcome = outcome
    event.message = message
    metrics.step_ended(event.step, outcome, event.duration_ms / 1000)


def for_deployments(
    session: Session, deployment_ids: Sequence[str]
) -> dict[str, list[DeploymentEvent]]:
    rows = session.scalars(
        select(DeploymentEvent)
        .where(DeploymentEvent.deployment_id.in_(deployment_ids))
        .order_by(DeploymentEvent.id)
    ).all()
    out: dict[str, list[DeploymentEvent]] = {dep_id: [] for dep_id in deployment_ids}
    for row in rows:
        out[row.deployment_id].append(row)
    return out
