"""What every builder provides: turn a directory into a tagged image."""

from __future__ import annotations

from typing import Protocol

from app.types import BuildSpec, CancelToken, LogFn


class Builder(Protocol):
    """Builds ``spec.tag`` from ``spec.source_dir``; returns the image id."""

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str: ...
