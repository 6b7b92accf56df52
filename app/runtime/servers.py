"""A Docker client per server: build it, and say clearly when the engine cannot be reached."""

from __future__ import annotations

import logging
import os

from docker.client import DockerClient
from docker.errors import DockerException

from app.errors import Unavailable

logger = logging.getLogger(__name__)


DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address(base_url: str | None) -> str:
    """Where the client goes: ``base_url``, else ``DOCKER_HOST``, else the default socket."""
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def docker_client(base_url: str | None = None, *, timeout: int = 120) -> DockerClient:
    """A client for the engine at ``base_url`` (``None``: from ``DOCKER_HOST`` & co).

    The API version is negotiated with the engine, so the engine is contacted here;
    raises :class:`Unavailable` when it does not answer.
    """
    where = engine_address(base_url)
    client: DockerClient | None = None
    try:
        if base_url is None:
            client = DockerClient.from_env(timeout=timeout)
        else:
            client = DockerClient(base_url=base_url, timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        if client is not None:
            client.close()
        raise Unavailable(f"cannot reach the Docker engine at {where}: {exc}") from exc
    logger.debug("connected to the Docker engine at %s", where)
    return client
