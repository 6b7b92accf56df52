"""What every source adapter provides: put an application's files in a directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.types import CancelToken, GitSourceSpec, LogFn


@dataclass(frozen=True, slots=True)
class FetchResult:
    path: Path
    commit_sha: str | None = None
    commit_message: str | None = None


class GitClient(Protocol):
    """Clones one branch of a repository at depth 1."""

    def clone(
        self, spec: GitSourceSpec, dest: Path, *, log: LogFn, cancel: CancelToken
    ) -> FetchResult: ...
