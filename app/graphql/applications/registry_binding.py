"""Registry credentials belong to the registry host they were given for.

Changing ``dockerImage`` to an image on another registry clears the stored username and
password (unless the same update gives new ones), as changing ``repository`` replaces
the git credentials: otherwise a DEPLOY key could point the image at a host it runs and
receive the password with the next pull. The host is stored beside the credential
(``registry_host``) and the pull sends the credential to that host only.
"""

from __future__ import annotations

from typing import Any

from docker.errors import DockerException

from app.db.models import Application
from app.errors import BadInput
from app.graphql.limits import check_length
from app.runtime.images import registry_host

_CREDENTIALS = ("registry_username", "registry_password_enc")


def image_registry(image: str | None) -> str | None:
    """The registry host of ``image`` ("docker.io" when it names none); None without one."""
    if not image:
        return None
    try:
        host = registry_host(image)
    except DockerException as exc:
        raise BadInput(f"dockerImage {image[:200]!r} is not an image reference: {exc}") from exc
    return check_length(host, "dockerImage registry host", 253)


def bind_registry(cols: dict[str, Any], row: Application | None = None) -> None:
    """Set ``cols["registry_host"]``, clearing credentials the new image's host may not get."""
    image = cols["docker_image"] if "docker_image" in cols else (row.docker_image if row else None)
    host = image_registry(image)
    if row is not None and "docker_image" in cols and host != row.registry_host:
        for column in _CREDENTIALS:
            cols.setdefault(column, None)
    has_credentials = any(
        cols[c] if c in cols else (getattr(row, c) if row else None) for c in _CREDENTIALS
    )
    cols["registry_host"] = host if has_credentials else None
