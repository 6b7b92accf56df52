"""Choosing a builder by build type."""

from __future__ import annotations

import pytest

from app.builders.dockerfile import DockerfileBuilder
from app.builders.registry import BUILDERS, builder_for
from app.builders.unavailable import (
    HerokuBuildpacksBuilder,
    NixpacksBuilder,
    PaketoBuildpacksBuilder,
    RailpackBuilder,
    StaticBuilder,
)
from app.errors import BadInput
from app.types import BuildType


class FakeApi:
    hooks: dict[str, list[object]]

    def __init__(self) -> None:
        self.hooks = {"response": []}


@pytest.mark.parametrize(
    ("build_type", "expected"),
    [
        (BuildType.DOCKERFILE, DockerfileBuilder),
        (BuildType.STATIC, StaticBuilder),
        (BuildType.NIXPACKS, NixpacksBuilder),
        (BuildType.HEROKU_BUILDPACKS, HerokuBuildpacksBuilder),
        (BuildType.PAKETO_BUILDPACKS, PaketoBuildpacksBuilder),
        (BuildType.RAILPACK, RailpackBuilder),
        ("DOCKERFILE", DockerfileBuilder),
    ],
)
def test_every_build_type_has_a_builder(build_type: BuildType, expected: type) -> None:
    assert isinstance(builder_for(build_type, docker_client=FakeApi()), expected)


def test_table_covers_the_enum() -> None:
    assert set(BUILDERS) == set(BuildType)


def test_unknown_build_type_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown build type 'KANIKO'; expected one of"):
        builder_for("KANIKO", docker_client=FakeApi())


def test_response_hook_is_installed_once() -> None:
    api = FakeApi()
    DockerfileBuilder(api)
    DockerfileBuilder(api)
    assert len(api.hooks["response"]) == 1
