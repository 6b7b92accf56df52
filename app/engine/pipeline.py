"""Which steps a deployment runs, chosen by its source type."""

from __future__ import annotations

from app.engine.steps import (
    BuildImage,
    FetchDrop,
    FetchGit,
    PipelineStep,
    ReleaseService,
    UseImage,
    VerifyHealth,
)
from app.errors import SourceError
from app.types import GIT_SOURCES, SourceType

_GIT: tuple[PipelineStep, ...] = (FetchGit(), BuildImage(), ReleaseService(), VerifyHealth())
_IMAGE: tuple[PipelineStep, ...] = (UseImage(), ReleaseService(), VerifyHealth())
_DROP: tuple[PipelineStep, ...] = (FetchDrop(), BuildImage(), ReleaseService(), VerifyHealth())

PIPELINES: dict[SourceType, tuple[PipelineStep, ...]] = {
    **{source: _GIT for source in GIT_SOURCES},
    SourceType.DOCKER: _IMAGE,
    SourceType.DROP: _DROP,
}


def steps_for(source_type: SourceType) -> tuple[PipelineStep, ...]:
    try:
        return PIPELINES[source_type]
    except KeyError:
        raise SourceError(f"source type {source_type.value} cannot be deployed yet") from None
