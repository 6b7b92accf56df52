"""Which steps a deployment runs, chosen by its source type."""

from __future__ import annotations

from app.engine.steps import (
    BuildImage,
    FetchDrop,
    FetchGit,
    PipelineStep,
    PushImage,
    ReleaseService,
    UseImage,
    VerifyHealth,
)
from app.errors import SourceError
from app.types import GIT_SOURCES, SourceType, Step

_GIT: tuple[PipelineStep, ...] = (FetchGit(), BuildImage(), ReleaseService(), VerifyHealth())
_IMAGE: tuple[PipelineStep, ...] = (UseImage(), ReleaseService(), VerifyHealth())
_DROP: tuple[PipelineStep, ...] = (FetchDrop(), BuildImage(), ReleaseService(), VerifyHealth())

_PUSH = PushImage()

PIPELINES: dict[SourceType, tuple[PipelineStep, ...]] = {
    **{source: _GIT for source in GIT_SOURCES},
    SourceType.DOCKER: _IMAGE,
    SourceType.DROP: _DROP,
}


def steps_for(source_type: SourceType, *, push: bool = False) -> tuple[PipelineStep, ...]:
    """The steps for ``source_type``; with ``push`` (an application with a registry),
    PUSH_IMAGE after BUILD_IMAGE (image sources are not built, so not pushed)."""
    try:
        steps = PIPELINES[source_type]
    except KeyError:
        raise SourceError(f"source type {source_type.value} cannot be deployed yet") from None
    if not push:
        return steps
    with_push: list[PipelineStep] = []
    for step in steps:
        with_push.append(step)
        if step.step is Step.BUILD_IMAGE:
            with_push.append(_PUSH)
    return tuple(with_push)
