"""The real adapters: git on this machine, builds and services on the Docker engine."""

from __future__ import annotations

from app.builders.registry import BUILDERS, builder_for
from app.engine.context import Adapters
from app.runtime.servers import docker_client
from app.runtime.swarm import SwarmRuntime
from app.settings import Settings
from app.sources.git import GitPythonClient


def real_adapters(settings: Settings) -> Adapters:
    """Connects to the Docker engine (raises Unavailable when it does not answer)."""
    client = docker_client(settings.docker_host)
    return Adapters(
        git=GitPythonClient(block_private=settings.block_private_sources),
        builders={bt: builder_for(bt, docker_client=client) for bt in BUILDERS},
        runtime=SwarmRuntime(client, probe_host=settings.health_probe_host),
    )
