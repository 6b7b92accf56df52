"""Queries on applications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import Cipher
from app.db.models import Application
from app.db.repos import paging
from app.db.repos.paging import Page, Window
from app.errors import Conflict, NotFound


def get(session: Session, app_id: str) -> Application | None:
    return session.get(Application, app_id)


def require(session: Session, app_id: str) -> Application:
    app = session.get(Application, app_id)
    if app is None:
        raise NotFound(f"application {app_id!r} does not exist")
    return app


def lock(session: Session, app_id: str) -> Application:
    """Load the row for update (serialises admission on PostgreSQL; SQLite locks the file)."""
    app = session.scalars(
        select(Application).where(Application.id == app_id).with_for_update()
    ).first()
    if app is None:
        raise NotFound(f"application {app_id!r} does not exist")
    return app


def by_app_name(session: Session, app_name: str) -> Application | None:
    return session.scalars(select(Application).where(Application.app_name == app_name)).first()


def create(session: Session, **fields: Any) -> Application:
    if by_app_name(session, fields["app_name"]) is not None:
        raise Conflict(f"appName {fields['app_name']!r} is already used by another application")
    app = Application(**fields)
    session.add(app)
    session.flush()
    return app


def page(session: Session, *, window: Window) -> Page[Application]:
    """Newest first, in either direction (``paging.Window``)."""
    return paging.page(session, select(Application), Application.id, window)


def by_ids(session: Session, ids: Sequence[str]) -> dict[str, Application]:
    rows = session.scalars(select(Application).where(Application.id.in_(ids))).all()
    return {row.id: row for row in rows}


def deploy_timeouts(session: Session, ids: set[str]) -> dict[str, float | None]:
    """Each application's own deployment time limit (None: the setting)."""
    if not ids:
        return {}
    rows = session.execute(
        select(Application.id, Application.deploy_timeout).where(Application.id.in_(ids))
    ).all()
    return {app_id: timeout for app_id, timeout in rows}


def seal_build_args(app: Application, cipher: Cipher) -> None:
    """Move clear build-arg values of a row older than migration 0004 into the encrypted
    column (the migration has no key); a no-op for every row written since."""
    if not app.build_args:
        return
    values = cipher.decrypt_json(app.build_args_enc, {})
    merged = {**app.build_args, **(values if isinstance(values, dict) else {})}
    app.build_args_enc = cipher.encrypt_json(merged)
    app.build_arg_keys = sorted(merged)
    app.build_args = {}


def build_arg_values(app: Application, cipher: Cipher) -> dict[str, str]:
    """The build arguments with their values (the clear column only for an unsealed row)."""
    values = cipher.decrypt_json(app.build_args_enc, {})
    merged = {**(app.build_args or {}), **(values if isinstance(values, dict) else {})}
    return {str(k): str(v) for k, v in merged.items()}


def seal_all_build_args(session: Session, cipher: Cipher) -> int:
    """Encrypt every row's clear build-arg values (rows older than migration 0004); run
    once at startup. Returns how many rows were sealed."""
    rows = session.scalars(select(Application).where(Application.build_args_enc.is_(None))).all()
    legacy = [row for row in rows if row.build_args]
    for row in legacy:
        seal_build_args(row, cipher)
    return len(legacy)
