"""Images with a layer of random bytes, so that a push really uploads it: no registry and
no engine has seen that layer before, so it cannot be "already there" or mounted from
another repository."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
from docker.errors import ImageNotFound, NotFound

BASE_IMAGE = "busybox:1.36"  # seeded into the test engine by scripts/services
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def random_image(docker_client: Any, workdir: Path, *, size: int, name: str = "") -> str:
    """Build ``slipway-test/random-<id>:1`` from BASE_IMAGE plus ``size`` random bytes."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "blob").open("wb") as out:
        left = size
        while left > 0:
            chunk = min(left, 1 << 20)
            out.write(os.urandom(chunk))
            left -= chunk
    (workdir / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY blob /blob\n")
    tag = f"slipway-test/random-{name or uuid.uuid4().hex[:10]}:1"
    list(docker_client.api.build(path=str(workdir), tag=tag, rm=True, decode=True))
    docker_client.images.get(tag)  # raises if the build failed
    return tag


def remove_image(docker_client: Any, image: str) -> None:
    """Remove ``image`` and every other tag of it (the pushed ones too)."""
    with contextlib.suppress(ImageNotFound, NotFound):
        docker_client.images.remove(docker_client.images.get(image).id, force=True)


def registry_tags(addr: str, path: str, auth: tuple[str, str] | None = None) -> list[str]:
    """The tags of repository ``path`` through the registry's HTTP API ([] when none)."""
    res = httpx.get(f"http://{addr}/v2/{path}/tags/list", auth=auth, timeout=10)
    if res.status_code == 404:
        return []
    res.raise_for_status()
    return list(res.json().get("tags") or [])


def manifest_digest(addr: str, path: str, ref: str, auth: tuple[str, str] | None = None) -> str:
    """The ``Docker-Content-Digest`` the registry answers for ``path:ref``."""
    res = httpx.head(
        f"http://{addr}/v2/{path}/manifests/{ref}",
        auth=auth,
        headers={"Accept": MANIFEST_V2},
        timeout=10,
    )
    res.raise_for_status()
    return res.headers["docker-content-digest"]
