"""Deployments and the events of their pipeline steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Deployment(IdMixin, Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_app_created", "application_id", "created_at"),
        Index("ix_deployments_status", "status"),
        Index("ix_deployments_app_id", "application_id", "id"),
        Index("ix_deployments_status_id", "status", "id"),
    )

    application_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("applications.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="QUEUED")
    trigger: Mapped[str] = mapped_column(String(16), default="MANUAL")
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    # what to fetch, when not the application's branch head: an exact commit (a webhook's
    # or commitSha's), a tag or branch (TAG pushes, pull requests), a build folder (drops)
    requested_sha: Mapped[str | None] = mapped_column(String(64))
    source_ref: Mapped[str | None] = mapped_column(String(255))
    source_ref_kind: Mapped[str | None] = mapped_column(String(8))  # branch | tag
    build_path: Mapped[str | None] = mapped_column(String(500))
    image_ref: Mapped[str | None] = mapped_column(String(500))  # repo@sha256:... once pushed
    # deployApplication(cleanCache:) for this one build; None: the application's setting
    clean_cache: Mapped[bool | None] = mapped_column(Boolean)
    registry_id: Mapped[str | None] = mapped_column(String(24))  # where image_ref was pushed
    # ROLLBACK: the earlier deployment whose rollback point this one releases
    rollback_of_id: Mapped[str | None] = mapped_column(String(24))
    # the rollback point of a DONE deployment: the local image (tag) and the copy pushed to
    # the rollback registry (repo:tag@sha256:...), and an encrypted snapshot of the release
    rollback_image: Mapped[str | None] = mapped_column(String(500))
    rollback_registry_ref: Mapped[str | None] = mapped_column(String(500))
    rollback_registry_id: Mapped[str | None] = mapped_column(String(24))
    release_spec_enc: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200))
    server_id: Mapped[str | None] = mapped_column(String(24))
    build_server_id: Mapped[str | None] = mapped_column(String(24))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_reason: Mapped[str | None] = mapped_column(String(300))  # who, and kill or cancel
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # SCHEDULED until then
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)


class DeploymentEvent(Base):
    """One pipeline step of one deployment: when it ran and how it ended."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16), default="RUNNING")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(Base):
    """A webhook delivery already handled: a replay of it is acknowledged and ignored."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("provider", "delivery_id"),
        # the same signed body replayed under a new delivery id is refused too
        UniqueConstraint("application_id", "body_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(Text)
    deployment_id: Mapped[str | None] = mapped_column(String(24))
    body_sha256: Mapped[str | None] = mapped_column(String(64))  # hex; None before 0005
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
