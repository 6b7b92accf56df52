"""Who is calling: the key from the headers (or the WebSocket init payload) and its scopes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from app.db.repos import api_keys
from app.db.session import Database
from app.errors import Forbidden, Unauthenticated, Unavailable
from app.types import Scope

log = logging.getLogger(__name__)

IMPLIED = {
    Scope.READ: {Scope.READ},
    Scope.DEPLOY: {Scope.READ, Scope.DEPLOY},
    Scope.ADMIN: {Scope.READ, Scope.DEPLOY, Scope.ADMIN},
}
MAX_KEY_LENGTH = 200  # ours are 47 characters; a longer value is refused before hashing


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[Scope]

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this API key lacks the {scope.value} scope")


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """``x-api-key: K`` or ``Authorization: Bearer K``."""
    if key := headers.get("x-api-key"):
        return key.strip()
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(db: Database, key: str | None) -> Principal:
    """The principal for ``key``; Unauthenticated when absent, unknown, revoked or expired.

    An unknown key costs one SHA-256 and one lookup of the digest in a unique index, the
    same whatever it shares with a real key. Each call reads the row, so a revocation acts
    on the next request (and on the next periodic re-check of a WebSocket)."""
    if not key:
        raise Unauthenticated("an API key is required (x-api-key or Authorization: Bearer)")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated("the API key is not valid")
    with db.session() as session:
        row = api_keys.find(session, key)
        if row is None:
            raise Unauthenticated("the API key is not valid")
        principal = _principal(row.id, row.name, row.scopes)
        last_used_at = row.last_used_at
    if api_keys.due_for_touch(last_used_at):
        _record_use(db, principal.key_id)
    return principal


def _principal(key_id: str, name: str, scopes: str) -> Principal:
    granted = [Scope(s) for s in scopes.split(",") if s]
    implied = frozenset().union(*(IMPLIED[s] for s in granted))
    return Principal(key_id=key_id, name=name, scopes=frozenset(implied))


def _record_use(db: Database, key_id: str) -> None:
    """lastUsedAt, in its own short transaction once a minute per key; a busy database
    delays the record, never the request's answer."""
    try:
        with db.session() as session:
            api_keys.touch(session, key_id)
    except Unavailable as exc:
        log.warning("could not record the use of API key %s: %s", key_id, exc)
