"""API keys: created with a fresh secret, looked up by digest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import hash_api_key, new_api_key
from app.db.base import utcnow
from app.db.models import ApiKey
from app.types import Scope


def create(session: Session, *, name: str, scopes: Sequence[Scope]) -> tuple[ApiKey, str]:
    """Returns the row and the plaintext key (never stored)."""
    secret = new_api_key()
    row = ApiKey(
        name=name,
        prefix=secret[:10],
        key_hash=hash_api_key(secret),
        scopes=",".join(sorted({s.value for s in scopes})),
    )
    session.add(row)
    session.flush()
    return row, secret


def find(session: Session, secret: str) -> ApiKey | None:
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # at most one write a minute per key
    return row
