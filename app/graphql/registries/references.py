"""An application's ``registryId`` and ``rollbackRegistryId``: checked ids, null clears.

A DEPLOY key may point its application at any registry an ADMIN configured (as it picks
a build server): the engine then pushes there with the registry's credentials, which the
key never sees and cannot move to another host (``updateRegistry`` needs ADMIN).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db.repos import registries
from app.errors import BadInput
from app.graphql.limits import check_length

FIELDS = {"registry_id": "registryId", "rollback_registry_id": "rollbackRegistryId"}
ID_MAX = 24


def reference(value: str | None, field: str) -> str | None:
    """A well-formed id, or None (null or "" clear the reference)."""
    if not value:
        return None
    return check_length(str(value), field, ID_MAX)


def check_references(session: Session, cols: dict[str, Any]) -> None:
    """BadInput naming the field when an id given in ``cols`` names no registry."""
    given = {column: cols[column] for column in FIELDS if cols.get(column)}
    found = registries.by_ids(session, given.values())
    for column, registry_id in given.items():
        if registry_id not in found:
            raise BadInput(f"{FIELDS[column]} {registry_id!r}: no such registry")
