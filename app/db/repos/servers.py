"""Queries on servers (build and deploy targets with their own concurrency limit)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Server
from app.errors import Conflict, NotFound
from app.ids import new_id


def get(session: Session, server_id: str) -> Server | None:
    return session.get(Server, server_id)


def require(session: Session, server_id: str) -> Server:
    server = session.get(Server, server_id)
    if server is None:
        raise NotFound(f"server {server_id!r} does not exist")
    return server


def all_servers(session: Session) -> Sequence[Server]:
    return session.scalars(select(Server).order_by(Server.name)).all()


def create(session: Session, *, name: str, max_concurrent_builds: int) -> Server:
    if session.scalars(select(Server).where(Server.name == name)).first() is not None:
        raise Conflict(f"a server named {name!r} exists already")
    server = Server(id=new_id(), name=name, max_concurrent_builds=max_concurrent_builds)
    session.add(server)
    session.flush()
    return server
