"""Who is calling: the key from the headers (or the WebSocket init payload) and its scopes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.db.repos import api_keys
from app.db.session import Database
from app.errors import Forbidden, Unauthenticated
from app.types import Scope

IMPLIED = {
    Scope.READ: {Scope.READ},
    Scope.DEPLOY: {Scope.READ, Scope.DEPLOY},
    Scope.ADMIN: {Scope.READ, Scope.DEPLOY, Scope.ADMIN},
}


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
    """The principal for ``key``; Unauthenticated when absent or unknown."""
    if not key:
        raise Unauthenticated("an API key is required (x-api-key or Authorization: Bearer)")
    with db.session() as session:
        row = api_keys.find(session, key)
        if row is None:
            raise Unauthenticated("the API key is not valid")
        granted = [Scope(s) for s in row.scopes.split(",") if s]
        scopes = frozenset().union(*(IMPLIED[s] for s in granted))
        return Principal(key_id=row.id, name=row.name, scopes=frozenset(scopes))
