"""API keys: created with a fresh secret, looked up by digest, listed, revoked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.crypto import hash_api_key, new_api_key
from app.db.base import utcnow
from app.db.models import ApiKey
from app.errors import Conflict, NotFound
from app.types import Scope

PREFIX_LENGTH = 10  # "slw_" and six random characters: 36 of the key's 256 bits, for recognition
USE_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often per key


def create(
    session: Session, *, name: str, scopes: Sequence[Scope], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Returns the row and the plaintext key (never stored)."""
    secret = new_api_key()
    row = ApiKey(
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_api_key(secret),
        scopes=",".join(sorted({s.value for s in scopes})),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, secret


def find(session: Session, secret: str) -> ApiKey | None:
    """The usable key with this secret: one indexed lookup of its digest, no write."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret))).first()
    if row is None or not row.usable(utcnow()):
        return None
    return row


def due_for_touch(last_used_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a use at ``now`` should be written (the last one is over a minute old)."""
    return last_used_at is None or last_used_at <= (now or utcnow()) - USE_RESOLUTION


def touch(session: Session, key_id: str, now: datetime | None = None) -> bool:
    """Record a use of the key unless one was recorded within USE_RESOLUTION; the condition
    is in the UPDATE, so concurrent requests (and processes) write it once."""
    now = now or utcnow()
    cutoff = now - USE_RESOLUTION
    done = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= cutoff))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0))


def list_all(session: Session) -> list[ApiKey]:
    """Every key, revoked and expired ones included, newest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)))


def revoke(session: Session, key_id: str, *, keep_last_admin: bool = True) -> bool:
    """Revoke a key at once; False when it already was. With ``keep_last_admin`` the last
    usable ADMIN key is kept (Conflict), so the API cannot lock every operator out.

    Run in a ``locking`` session: revocations serialise (SQLite's write lock, PostgreSQL's
    advisory lock), so two at once cannot each count the other as the remaining ADMIN."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext("slipway:api-keys"))))
    row = session.get(ApiKey, key_id, populate_existing=True)
    if row is None:
        raise NotFound(f"API key {key_id} does not exist")
    if row.revoked_at is not None:
        return False
    now = utcnow()
    if keep_last_admin and _is_admin(row) and row.usable(now):
        others = [k for k in _usable_admins(session, now) if k.id != row.id]
        if not others:
            raise Conflict(
                "this is the last usable ADMIN key: create another ADMIN key first "
                "(or revoke it locally with `slipway api-key revoke`)"
            )
    row.revoked_at = now
    session.flush()
    return True


def usable_admin_count(session: Session) -> int:
    return len(_usable_admins(session, utcnow()))


def _is_admin(row: ApiKey) -> bool:
    return Scope.ADMIN.value in row.scopes.split(",")


def _usable_admins(session: Session, now: datetime) -> list[ApiKey]:
    rows = session.scalars(
        select(ApiKey).where(ApiKey.revoked_at.is_(None), ApiKey.scopes.contains(Scope.ADMIN.value))
    )
    return [r for r in rows if _is_admin(r) and r.usable(now)]
