"""Choosing the builder for a build type: a lookup in a table of small classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.builders.base import Builder
from app.builders.dockerfile import DockerfileBuilder
from app.builders.unavailable import (
    HerokuBuildpacksBuilder,
    NixpacksBuilder,
    PaketoBuildpacksBuilder,
    RailpackBuilder,
    StaticBuilder,
)
from app.errors import BadInput
from app.types import BuildType


def _dockerfile(
    *, docker_client: Any, docker_host: str | None = None, docker_cli: str = "docker"
) -> Builder:
    return DockerfileBuilder(docker_client, docker_host=docker_host, docker_cli=docker_cli)


BUILDERS: dict[BuildType, Callable[..., Builder]] = {
    BuildType.DOCKERFILE: _dockerfile,
    BuildType.STATIC: StaticBuilder,
    BuildType.NIXPACKS: NixpacksBuilder,
    BuildType.HEROKU_BUILDPACKS: HerokuBuildpacksBuilder,
    BuildType.PAKETO_BUILDPACKS: PaketoBuildpacksBuilder,
    BuildType.RAILPACK: RailpackBuilder,
}


def builder_for(build_type: BuildType | str, *, docker_client: Any) -> Builder:
    """The builder for ``build_type``, talking to the engine behind ``docker_client``."""
    try:
        factory = BUILDERS[BuildType(build_type)]
    except (KeyError, ValueError) as exc:
        known = ", ".join(sorted(BUILDERS))
        raise BadInput(f"unknown build type {build_type!r}; expected one of {known}") from exc
    return factory(docker_client=docker_client)
