"""The runtime monitor's state: incidents per application, and one watch per engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Incident(IdMixin, Base):
    """An application down or failing its health check, from the first observation until
    it runs healthy again; at most one open (``recovered_at`` null) per application. Its
    ``sent_at``/``recovered_sent_at`` say the event was handed on, so never twice."""

    __tablename__ = "incidents"

    application_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    deployment_id: Mapped[str | None] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(24))  # APP_DOWN | HEALTH_CHECK_FAILED
    # exit_code, oom_killed, reason, output (health check), logs (masked), task_id
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EngineWatch(Base):
    """One row per watched engine: who watches it (a lease until ``lease_until``) and the
    time of the last engine event handled, where the next watcher resumes."""

    __tablename__ = "engine_watches"

    engine: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_ns: Mapped[int | None] = mapped_column(BigInteger)  # the event's timeNano
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
