"""Registries: where images are pushed to (and rollback copies kept), with credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Registry(IdMixin, Base):
    __tablename__ = "registries"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(500))  # as given: host[:port] or http(s)://host
    host: Mapped[str] = mapped_column(String(255))  # host[:port] as in image references
    username: Mapped[str | None] = mapped_column(String(200))
    password_enc: Mapped[str | None] = mapped_column(Text)  # encrypted; write-only
    image_prefix: Mapped[str | None] = mapped_column(String(255))  # namespace under the host
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
