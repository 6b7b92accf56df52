"""Notifications: where messages about deployments and running applications go (apprise
URLs, encrypted), and the outbox of messages still to deliver."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Notification(IdMixin, Base):
    __tablename__ = "notifications"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    url_enc: Mapped[str] = mapped_column(Text)  # the apprise URL, encrypted: it holds tokens
    service: Mapped[str] = mapped_column(String(100))  # apprise's name for it ("Slack", "JSON")
    scheme: Mapped[str] = mapped_column(String(32))  # the URL's scheme ("slack", "json")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # NotificationEvent values
    application_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every one
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)  # the last failed attempt; never the URL
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationDelivery(IdMixin, Base):
    """One message for one notification: PENDING until sent (SENT) or given up (FAILED).

    The row is the truth, like a deployment's: a queue message only says "deliver N", and
    the watchdog sends again a PENDING row whose time has come and gone (a lost message)."""

    __tablename__ = "notification_deliveries"

    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[str | None] = mapped_column(String(24))
    deployment_id: Mapped[str | None] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # secrets already masked
    status: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a sender is on it
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
