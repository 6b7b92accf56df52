"""Webhook deliveries already handled: one row per provider and delivery id, and per
application and body (a signed body replayed under a new delivery id is the same delivery)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import WebhookDelivery


def record(
    session: Session,
    *,
    application_id: str,
    provider: str,
    delivery_id: str,
    event: str,
    outcome: str,
    body_sha256: str | None = None,
) -> WebhookDelivery:
    """Insert the delivery; the flush raises IntegrityError when it was seen before."""
    row = WebhookDelivery(
        application_id=application_id,
        provider=provider,
        delivery_id=delivery_id,
        event=event[:64],
        outcome=outcome,
        body_sha256=body_sha256,
    )
    session.add(row)
    session.flush()
    return row


def body_seen(session: Session, *, application_id: str, body_sha256: str) -> bool:
    """True when this application already took a delivery with this exact body."""
    found = session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.application_id == application_id,
            WebhookDelivery.body_sha256 == body_sha256,
        )
    )
    return found is not None


def finish(session: Session, delivery_pk: int, *, outcome: str, deployment_id: str | None) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_pk)
        .values(outcome=outcome, deployment_id=deployment_id)
    )


def forget(session: Session, delivery_pk: int) -> None:
    """Drop a claim whose action failed, so the provider's redelivery is tried again."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.id == delivery_pk))


def prune(session: Session, *, older_than_days: float) -> int:
    """Remove delivery records older than the given age; returns how many."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
