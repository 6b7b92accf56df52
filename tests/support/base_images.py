"""A base image served by the local registry, so that builds pulling their base fresh
(cleanCache) work offline: busybox:1.36, pushed under a unique repository."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import docker.errors


@contextlib.contextmanager
def registry_base(docker_client: Any, registry_addr: str) -> Iterator[str]:
    """``<registry>/slipway-test/base-<id>:1``; its tags and digests removed afterwards."""
    repository = f"{registry_addr}/slipway-test/base-{uuid.uuid4().hex[:10]}"
    ref = f"{repository}:1"
    docker_client.images.get("busybox:1.36").tag(ref)
    docker_client.images.push(ref)
    try:
        yield ref
    finally:
        for image in docker_client.images.list(name=repository):
            for name in [*image.tags, *image.attrs.get("RepoDigests", [])]:
                if name.startswith(repository):
                    with contextlib.suppress(docker.errors.NotFound):
                        docker_client.api.remove_image(name)  # busybox itself stays
