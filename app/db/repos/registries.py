"""Queries on registries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db.models import Application, Registry
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


def all_registries(session: Session) -> list[Registry]:
    """By name."""
    return list(session.scalars(select(Registry).order_by(Registry.name)).all())


def by_name(session: Session, name: str) -> Registry | None:
    return session.scalars(select(Registry).where(Registry.name == name)).first()


def users(session: Session, registry_id: str) -> list[Application]:
    """Applications that push to ``registry_id`` or keep rollback copies there, by name."""
    uses = or_(
        Application.registry_id == registry_id, Application.rollback_registry_id == registry_id
    )
    return list(session.scalars(select(Application).where(uses).order_by(Application.name)).all())
