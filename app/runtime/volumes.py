"""Named volumes an application may mount: its own, never another system's data.

A named volume needs only a DEPLOY key, so it must not become a way around the bind-mount
rules: the volume of Slipway's own data dir or its database under docker compose
(``docker_slipway-data``, ``docker_pg-data``) holds ``secret.key`` and every credential.
Before a release, each named volume that already exists on the engine is refused when
a container Slipway did not make uses it, or when docker compose or a stack made it.
A volume that does not exist yet is created by Swarm for this service.

The check sees the engine Slipway talks to (the manager); on a multi-node swarm a volume
that exists only on another node is not seen.
"""

from __future__ import annotations

from typing import Any

from docker.errors import NotFound

from app.errors import ReleaseError
from app.runtime.spec import MANAGED_LABEL
from app.types import ServiceSpec

FOREIGN_LABELS = ("com.docker.compose.project", "com.docker.stack.namespace")


def check_volumes(api: Any, spec: ServiceSpec) -> None:
    """ReleaseError for a named volume of ``spec`` that belongs to something else."""
    for mount in spec.mounts:
        if mount.type == "volume":
            _check(api, mount.source, mount.target)


def _check(api: Any, name: str, target: str) -> None:
    try:
        volume = api.inspect_volume(name)
    except NotFound:
        return  # Swarm creates it for this service
    labels = volume.get("Labels") or {}
    owner = next((labels[k] for k in FOREIGN_LABELS if k in labels), None)
    if owner is not None and labels.get(MANAGED_LABEL) != "true":
        raise ReleaseError(
            f"mount {target}: volume {name} belongs to {owner!r} (made by docker compose or "
            "a stack, not by Slipway): not mounting it"
        )
    for container in api.containers(all=True, filters={"volume": name}):
        if (container.get("Labels") or {}).get(MANAGED_LABEL) != "true":
            names = ", ".join(n.lstrip("/") for n in container.get("Names") or []) or "?"
            raise ReleaseError(
                f"mount {target}: volume {name} is used by container {names}, which Slipway "
                "did not make: not mounting it"
            )
