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
    # ssh host keys accepted on first use (the application had none pinned); None otherwise
    known_hosts: str | None = None


class GitClient(Protocol):
    """Fetches one branch, tag or exact commit of a repository (shallow where it can)."""

    def clone(
        self, spec: GitSourceSpec, dest: Path, *, log: LogFn, cancel: CancelToken
    ) -> FetchResult: ...
