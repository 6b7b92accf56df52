"""GitPythonClient against smart HTTP (git http-backend behind Basic auth): tokens, commits,
tags and submodules, with no token ever reaching ``.git/config``, the log or an error."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import SourceError
from app.sources.git import GitPythonClient
from app.types import CancelToken, GitSourceSpec, SourceType
from tests.services import missing
from tests.support.git_remotes import (
    HTTP_BACKEND,
    GitHttpServer,
    Remote,
    history_repo,
    serve_git,
    set_submodule_url,
    submodule_repos,
)
from tests.support.recorder import Recorder

TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def _needs_git() -> None:
    if shutil.which("git") is None or not HTTP_BACKEND.is_file():
        missing("git and git-http-backend")


def _head(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip


def _assert_no_token(checkout: Path, log: Recorder) -> None:
    config = (checkout / ".git" / "config").read_text()
    assert TOKEN not in config and "extraheader" not in config.lower()
    assert TOKEN not in log.text


def _clone(spec: GitSourceSpec, dest: Path, log: Recorder | None = None) -> object:
    return GitPythonClient().clone(spec, dest, log=log or Recorder(), cancel=CancelToken())


@pytest.mark.parametrize(
    ("provider", "username"),
    [
        (SourceType.GITHUB, "x-access-token"),
        (SourceType.GITLAB, "oauth2"),
        (SourceType.BITBUCKET, "x-token-auth"),
        (SourceType.GITEA, "oauth2"),
        (SourceType.GIT, "git"),
    ],
)
def test_token_alone_uses_the_providers_username(
    provider: SourceType, username: str, tmp_path: Path
) -> None:
    remote = history_repo(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username=username, password=TOKEN) as server:
        log = Recorder()
        spec = GitSourceSpec(server.url(remote), branch="main", password=TOKEN, provider=provider)
        result = GitPythonClient().clone(spec, tmp_path / "out", log=log, cancel=CancelToken())
        assert set(server.seen_users) >= {username}
    assert result.commit_sha == remote.head == _head(tmp_path / "out")
    assert (tmp_path / "out" / "version.txt").read_text() == "2\n"
    _assert_no_token(tmp_path / "out", log)


def test_an_explicit_username_wins_over_the_convention(tmp_path: Path) -> None:
    remote = history_repo(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="alice", password=TOKEN) as server:
        spec = GitSourceSpec(
            server.url(remote), username="alice", password=TOKEN, provider=SourceType.GITHUB
        )
        assert _clone(spec, tmp_path / "out")
        assert "x-access-token" not in server.seen_users


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Remote, GitHttpServer]]:
    remote = history_repo(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="x-access-token", password=TOKEN) as server:
        yield remote, server


@pytest.mark.parametrize("password", [None, "wrong-token-123"])
def test_missing_or_wrong_token_fails_clearly_without_the_token(
    password: str | None, served: tuple[Remote, GitHttpServer], tmp_path: Path
) -> None:
    remote, server = served
    log = Recorder()
    spec = GitSourceSpec(server.url(remote), password=password, provider=SourceType.GITHUB)
    with pytest.raises(SourceError) as info:
        _clone(spec, tmp_path / "out", log)
    message = str(info.value)
    assert message.startswith(f"git clone of {server.url(remote)} failed: ")
    assert "the repository asked for credentials or rejected them" in message
    for secret in (TOKEN, "wrong-token-123"):
        assert secret not in message and secret not in log.text
    assert not (tmp_path / "out").exists()


def test_exact_older_commit_is_checked_out(
    served: tuple[Remote, GitHttpServer], tmp_path: Path
) -> None:
    remote, server = served
    log = Recorder()
    spec = GitSourceSpec(
        server.url(remote), branch="main", password=TOKEN, provider=SourceType.GITHUB,
        commit_sha=remote.shas[0],
    )  # fmt: skip
    result = GitPythonClient().clone(spec, tmp_path / "out", log=log, cancel=CancelToken())
    assert result.commit_sha == remote.shas[0] == _head(tmp_path / "out")
    assert result.commit_message == "first"
    assert (tmp_path / "out" / "version.txt").read_text() == "1\n"
    assert "did not send commit" not in log.text, "protocol v2 sends a reachable commit itself"
    _assert_no_token(tmp_path / "out", log)


def test_commit_the_server_will_not_send_is_found_on_the_branch(
    served: tuple[Remote, GitHttpServer], tmp_path: Path
) -> None:
    remote, server = served
    server.protocol_v2 = False  # v0 refuses a want that is not a ref tip
    log = Recorder()
    spec = GitSourceSpec(
        server.url(remote), branch="main", password=TOKEN, provider=SourceType.GITHUB,
        commit_sha=remote.shas[0],
    )  # fmt: skip
    result = GitPythonClient().clone(spec, tmp_path / "out", log=log, cancel=CancelToken())
    assert result.commit_sha == remote.shas[0] == _head(tmp_path / "out")
    assert f"did not send commit {remote.shas[0]} by itself" in log.text
    _assert_no_token(tmp_path / "out", log)


def test_abbreviated_commit_is_found_on_the_branch(
    served: tuple[Remote, GitHttpServer], tmp_path: Path
) -> None:
    remote, server = served
    spec = GitSourceSpec(
        server.url(remote), branch="main", password=TOKEN, provider=SourceType.GITHUB,
        commit_sha=remote.shas[0][:10],
    )  # fmt: skip
    result = _clone(spec, tmp_path / "out")
    assert getattr(result, "commit_sha", None) == remote.shas[0] == _head(tmp_path / "out")


def test_unknown_commit_fails_clearly(served: tuple[Remote, GitHttpServer], tmp_path: Path) -> None:
    remote, server = served
    missing_sha = "1234567890abcdef1234567890abcdef12345678"
    spec = GitSourceSpec(
        server.url(remote), branch="main", password=TOKEN, provider=SourceType.GITHUB,
        commit_sha=missing_sha,
    )  # fmt: skip
    with pytest.raises(SourceError, match=f"commit {missing_sha} not found in .*branch main"):
        _clone(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tag_is_checked_out(served: tuple[Remote, GitHttpServer], tmp_path: Path) -> None:
    remote, server = served
    log = Recorder()
    spec = GitSourceSpec(server.url(remote), tag="v1", password=TOKEN, provider=SourceType.GITHUB)
    result = GitPythonClient().clone(spec, tmp_path / "out", log=log, cancel=CancelToken())
    assert result.commit_sha == remote.tag_sha == _head(tmp_path / "out")
    assert log.lines[0][1] == f"Cloning {server.url(remote)} (tag v1)"


def test_missing_tag_is_named_in_the_error(
    served: tuple[Remote, GitHttpServer], tmp_path: Path
) -> None:
    remote, server = served
    spec = GitSourceSpec(server.url(remote), tag="v9", password=TOKEN, provider=SourceType.GITHUB)
    with pytest.raises(SourceError, match="tag v9 not found"):
        _clone(spec, tmp_path / "out")


@pytest.fixture
def with_lib(tmp_path: Path) -> Iterator[tuple[Remote, Remote, GitHttpServer]]:
    parent, lib = submodule_repos(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="oauth2", password=TOKEN) as server:
        yield parent, lib, server


def test_submodules_are_checked_out_on_request(
    with_lib: tuple[Remote, Remote, GitHttpServer], tmp_path: Path
) -> None:
    parent, lib, server = with_lib
    log = Recorder()
    spec = GitSourceSpec(
        server.url(parent), password=TOKEN, provider=SourceType.GITLAB, submodules=True
    )
    GitPythonClient().clone(spec, tmp_path / "out", log=log, cancel=CancelToken())
    assert (tmp_path / "out" / "lib" / "version.txt").read_text() == "2\n"
    assert _head(tmp_path / "out" / "lib") == lib.head
    assert "Updating submodules: ../lib.git" in log.text
    _assert_no_token(tmp_path / "out", log)
    modules = tmp_path / "out" / ".git" / "modules" / "lib" / "config"
    assert TOKEN not in modules.read_text()


def test_submodules_are_left_alone_unless_asked(
    with_lib: tuple[Remote, Remote, GitHttpServer], tmp_path: Path
) -> None:
    parent, _, server = with_lib
    spec = GitSourceSpec(server.url(parent), password=TOKEN, provider=SourceType.GITLAB)
    _clone(spec, tmp_path / "out")
    assert not any((tmp_path / "out" / "lib").iterdir())


@pytest.mark.parametrize("url", ["ext::sh -c touch% {marker}", "file://{lib}"])
def test_submodule_urls_outside_the_allowed_protocols_are_refused(
    url: str, with_lib: tuple[Remote, Remote, GitHttpServer], tmp_path: Path
) -> None:
    parent, lib, server = with_lib
    marker = tmp_path / "pwned"
    set_submodule_url(parent, url.format(marker=marker, lib=lib.bare))
    spec = GitSourceSpec(
        server.url(parent), password=TOKEN, provider=SourceType.GITLAB, submodules=True
    )
    with pytest.raises(SourceError, match="refusing submodule.lib"):
        _clone(spec, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
