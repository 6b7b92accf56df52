"""Which steps a deployment runs, chosen by its source type."""

from __future__ import annotations

from app.engine.steps import (
    BuildImage,
    FetchDrop,
    FetchGit,
    PipelineStep,
    PushImage,
    PushRollbackCopy,
    ReleaseService,
    UseImage,
    UseRollbackPoint,
    VerifyHealth,
)
from app.errors import SourceError
from app.types import GIT_SOURCES, SourceType, Step

_GIT: tuple[PipelineStep, ...] = (FetchGit(), BuildImage(), ReleaseService(), VerifyHealth())
_IMAGE: tuple[PipelineStep, ...] = (UseImage(), ReleaseService(), VerifyHealth())
_DROP: tuple[PipelineStep, ...] = (FetchDrop(), BuildImage(), ReleaseService(), VerifyHealth())

_PUSH = PushImage()
# A rollback releases an earlier deployment's image and snapshot: no fetch, no build.
ROLLBACK: tuple[PipelineStep, ...] = (UseRollbackPoint(), ReleaseService(), VerifyHealth())
_COPY = PushRollbackCopy()

PIPELINES: dict[SourceType, tuple[PipelineStep, ...]] = {
    **{source: _GIT for source in GIT_SOURCES},
    SourceType.DOCKER: _IMAGE,
    SourceType.DROP: _DROP,
}


def steps_for(
    source_type: SourceType, *, push: bool = False, rollback: bool = False, copy: bool = False
) -> tuple[PipelineStep, ...]:
    """The steps for ``source_type``; with ``push`` (an application with a registry),
    PUSH_IMAGE after BUILD_IMAGE (image sources are not built, so not pushed). A
    ``rollback`` runs :data:`ROLLBACK` whatever the source; ``copy`` (a rollback registry)
    adds ROLLBACK_COPY after VERIFY_HEALTH."""
    if rollback:
        return ROLLBACK
    steps = _source_steps(source_type, push=push)
    return (*steps, _COPY) if copy else steps


def _source_steps(source_type: SourceType, *, push: bool) -> tuple[PipelineStep, ...]:
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
