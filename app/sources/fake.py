"""An in-memory stand-in for :class:`GitClient`, for fast unit tests of the pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.errors import SourceError, SourceNetworkError
from app.sources.base import FetchResult
from app.types import CancelToken, GitSourceSpec, LogFn, LogStream

FAKE_SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeGitClient:
    """Copies ``source_dir`` (if any) into the destination and reports a fixed commit.

    ``fail`` makes every clone raise :class:`SourceError` with that message;
    ``network_failures``: the first N clones raise :class:`SourceNetworkError`;
    ``clones`` records each spec and destination it was asked for.
    """

    def __init__(
        self,
        source_dir: Path | None = None,
        *,
        sha: str = FAKE_SHA,
        message: str = "fake commit",
        fail: str | None = None,
        network_failures: int = 0,
    ) -> None:
        self.source_dir = source_dir
        self.sha = sha
        self.message = message
        self.fail = fail
        self.network_failures = network_failures  # the first N clones fail as a network would
        self.clones: list[tuple[GitSourceSpec, Path]] = []

    def clone(
        self, spec: GitSourceSpec, dest: Path, *, log: LogFn, cancel: CancelToken
    ) -> FetchResult:
        """Pretend to clone ``spec`` into ``dest``."""
        cancel.check()
        self.clones.append((spec, dest))
        log(f"Cloning {spec.repository} (branch {spec.branch})", stream=LogStream.SYSTEM)
        if self.fail is not None:
            raise SourceError(self.fail)
        if self.network_failures > 0:
            self.network_failures -= 1
            raise SourceNetworkError("git clone failed: Could not resolve host: example.invalid")
        if self.source_dir is not None:
            shutil.copytree(self.source_dir, dest, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
        log(f"Checked out {self.sha} {self.message}", stream=LogStream.SYSTEM)
        return FetchResult(path=dest, commit_sha=self.sha, commit_message=self.message)
