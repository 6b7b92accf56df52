"""Queries on registries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Registry
from app.errors import NotFound


def get(session: Session, registry_id: str) -> Registry | None:
    return session.get(Registry, registry_id)


def require(session: Session, registry_id: str) -> Registry:
    row = session.get(Registry, registry_id)
    if row is None:
        raise NotFound(f"registry {registry_id!r} does not exist")
    return row


def by_ids(session: Session, ids: Iterable[str | None]) -> dict[str, Registry]:
    """The registries among ``ids`` (None entries ignored), by id."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = session.scalars(select(Registry).where(Registry.id.in_(wanted))).all()
    return {row.id: row for row in rows}
