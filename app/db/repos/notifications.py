"""Queries on notifications and their delivery outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Notification, NotificationDelivery
from app.errors import NotFound

PENDING, SENT, FAILED = "PENDING", "SENT", "FAILED"


def get(session: Session, notification_id: str) -> Notification | None:
    return session.get(Notification, notification_id)


def require(session: Session, notification_id: str) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None:
        raise NotFound(f"notification {notification_id!r} does not exist")
    return row


def all_notifications(session: Session) -> list[Notification]:
    """By name."""
    return list(session.scalars(select(Notification).order_by(Notification.name)).all())


def by_name(session: Session, name: str) -> Notification | None:
    return session.scalars(select(Notification).where(Notification.name == name)).first()


def matching(session: Session, event: str, application_id: str | None) -> list[Notification]:
    """The notifications that want ``event`` for this application (an empty
    ``application_ids`` is every application, those made later included)."""
    return [
        row
        for row in all_notifications(session)
        if event in (row.events or [])
        and (not row.application_ids or application_id in row.application_ids)
    ]


def add_delivery(session: Session, delivery: NotificationDelivery) -> NotificationDelivery:
    session.add(delivery)
    session.flush()
    return delivery


def delivery(session: Session, delivery_id: str) -> NotificationDelivery | None:
    return session.get(NotificationDelivery, delivery_id)


def claim(session: Session, delivery_id: str, *, stale_before: datetime) -> bool:
    """Take a PENDING delivery for one attempt: True for exactly one sender at a time (a
    claim older than ``stale_before`` is a sender that died and may be taken again)."""
    result = session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == delivery_id,
            NotificationDelivery.status == PENDING,
            or_(
                NotificationDelivery.claimed_at.is_(None),
                NotificationDelivery.claimed_at < stale_before,
            ),
        )
        .values(claimed_at=utcnow(), attempts=NotificationDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def overdue(
    session: Session, *, grace: float, stale_before: datetime, limit: int = 200
) -> list[str]:
    """PENDING deliveries whose attempt is ``grace`` seconds overdue and that no live sender
    holds: their queue message was lost (a process stopped). Oldest first."""
    due = utcnow() - timedelta(seconds=grace)
    rows = session.scalars(
        select(NotificationDelivery.id)
        .where(
            NotificationDelivery.status == PENDING,
            NotificationDelivery.next_attempt_at <= due,
            or_(
                NotificationDelivery.claimed_at.is_(None),
                NotificationDelivery.claimed_at < stale_before,
            ),
        )
        .order_by(NotificationDelivery.next_attempt_at)
        .limit(limit)
    ).all()
    return list(rows)


def prune_finished(session: Session, *, older_than: datetime) -> int:
    """Forget SENT and FAILED deliveries finished before ``older_than``."""
    rows = session.scalars(
        select(NotificationDelivery).where(
            NotificationDelivery.status.in_((SENT, FAILED)),
            NotificationDelivery.created_at < older_than,
        )
    ).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def delete(session: Session, row: Notification) -> None:
    """The notification and its deliveries (not left to ON DELETE CASCADE: SQLite)."""
    for pending in session.scalars(
        select(NotificationDelivery).where(NotificationDelivery.notification_id == row.id)
    ).all():
        session.delete(pending)
    session.flush()
    session.delete(row)
