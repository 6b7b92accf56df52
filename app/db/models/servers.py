"""Servers: Docker engines that deployments build or run on (the local engine has no row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, UTCDateTime, utcnow


class Server(IdMixin, Base):
    __tablename__ = "servers"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    max_concurrent_builds: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
