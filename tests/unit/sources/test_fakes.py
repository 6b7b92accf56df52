"""The fakes honour the protocols they stand in for."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.builders.base import Builder
from app.builders.fake import FAKE_IMAGE_ID, FakeBuilder
from app.errors import BuildError, Cancelled, SourceError
from app.sources.base import GitClient
from app.sources.fake import FAKE_SHA, FakeGitClient
from app.sources.git import GitPythonClient
from app.types import BuildSpec, CancelToken, GitSourceSpec, LogStream


class Lines(list[str]):
    """A LogFn that keeps the messages."""

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


def _ignore(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
    pass


def test_fake_git_client_copies_and_reports_a_fixed_commit(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "Dockerfile").write_text("FROM busybox:1.36\n")
    client: GitClient = FakeGitClient(tmp_path / "src")
    result = client.clone(GitSourceSpec("x"), tmp_path / "d", log=_ignore, cancel=CancelToken())
    assert result.commit_sha == FAKE_SHA
    assert (tmp_path / "d" / "Dockerfile").is_file()


def test_fake_git_client_fails_on_request(tmp_path: Path) -> None:
    client = FakeGitClient(fail="no such repo")
    with pytest.raises(SourceError, match="no such repo"):
        client.clone(GitSourceSpec("x"), tmp_path, log=_ignore, cancel=CancelToken())


def test_fake_builder_logs_and_returns_an_id(tmp_path: Path) -> None:
    lines = Lines()
    builder: Builder = FakeBuilder(lines=2)
    image = builder.build(BuildSpec(tmp_path, "t"), log=lines, cancel=CancelToken())
    assert image == FAKE_IMAGE_ID and len(lines) == 2


def test_fake_builder_fails_or_blocks_until_cancelled(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="boom"):
        FakeBuilder(fail="boom").build(BuildSpec(tmp_path, "t"), log=_ignore, cancel=CancelToken())
    builder, cancel = FakeBuilder(block=True), CancelToken()
    threading.Timer(0.1, cancel.cancel).start()
    with pytest.raises(Cancelled):
        builder.build(BuildSpec(tmp_path, "t"), log=_ignore, cancel=cancel)
    assert builder.started.is_set()


def test_real_client_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    real: GitClient = GitPythonClient()
    with pytest.raises(SourceError, match="exists and is not an empty directory"):
        real.clone(GitSourceSpec("https://h/r"), tmp_path, log=_ignore, cancel=CancelToken())
    assert (tmp_path / "keep.txt").read_text() == "precious"
