"""Who may bind which host path: the key's scope and the operator's prefixes decide.

A bind an ADMIN key set is marked ``"admin": true`` in the stored mount, so a deployment
(whichever key starts it) knows it was approved, and a DEPLOY key may send it back
unchanged while it edits the other mounts. Named volumes need no ADMIN key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.runtime.host_paths import ADMIN_MARK, HostPathPolicy, normalised


def _key(mount: dict[str, Any]) -> tuple[str, str, bool]:
    return (mount["source"], mount["target"], bool(mount.get("read_only")))


def authorize_mounts(
    mounts: list[dict[str, Any]],
    *,
    policy: HostPathPolicy,
    admin: bool,
    current: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """``mounts`` as they may be stored for this key; BadInput (a protected path) or
    Forbidden (a host path a DEPLOY key may not bind) otherwise. Nothing is written here."""
    approved = {_key(m) for m in current if m.get("type") == "bind" and m.get(ADMIN_MARK)}
    allowed = []
    for mount in mounts:
        if mount["type"] != "bind":
            allowed.append(mount)
            continue
        mount = {**mount, "source": normalised(mount["source"])}
        by_admin = admin or _key(mount) in approved
        policy.authorize(mount["source"], admin=by_admin)
        allowed.append({**mount, ADMIN_MARK: True} if by_admin else mount)
    return allowed
