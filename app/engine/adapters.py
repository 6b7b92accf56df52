"""The real adapters: git on this machine, builds, pushes and services on the Docker engine,
the registries' HTTP API."""

from __future__ import annotations

from functools import partial

from app.builders.registry import BUILDERS
from app.crypto import instance_id
from app.engine.context import Adapters
from app.engine.lazy import EngineBuilder, EnginePusher, EngineRuntime
from app.registry.client import registry_client
from app.runtime.connection import EngineConnection
from app.runtime.mesh import IngressFallback
from app.runtime.swarm import SwarmRuntime
from app.settings import Settings
from app.sources.git import GitPythonClient
from app.types import BuildType


def real_adapters(settings: Settings) -> Adapters:
    """Contacts no engine: the builders and runtime connect when first used."""
    engine = EngineConnection(settings.docker_host)
    swarm = partial(
        SwarmRuntime,
        probe_host=settings.health_probe_host,
        ingress_fallback=IngressFallback(settings.ingress_fallback),
        instance=instance_id(settings),
    )
    factories = dict(BUILDERS)
    # builds with secrets run the docker CLI (BuildKit) against the same engine
    factories[BuildType.DOCKERFILE] = partial(
        BUILDERS[BuildType.DOCKERFILE], docker_host=engine.address, docker_cli=settings.docker_cli
    )
    return Adapters(
        git=GitPythonClient(block_private=settings.block_private_sources),
        builders={bt: EngineBuilder(engine, factory) for bt, factory in factories.items()},
        runtime=EngineRuntime(engine, swarm),
        pusher=EnginePusher(engine),
        engine=engine,
        registry=registry_client(settings.registry_timeout),
    )
