"""GitPythonClient with private sources blocked, against a real git http-backend: the
checked address is the one git connects to (pinned, so a second lookup cannot move it),
and submodules may not reach a private host either."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import SourceError
from app.sources import git as git_source
from app.sources.addresses import Endpoint, resolve_public
from app.sources.git import GitPythonClient
from app.types import CancelToken, GitSourceSpec, SourceType
from tests.services import missing
from tests.support.git_remotes import (
    HTTP_BACKEND,
    GitHttpServer,
    Remote,
    serve_git,
    set_submodule_url,
    submodule_repos,
)
from tests.support.recorder import Recorder

TOKEN = "tok-1a2b3c4d"
PINNED = "pinned.invalid"  # resolves nowhere: only the pin can lead git to the server


@pytest.fixture(autouse=True)
def _needs_git() -> None:
    if shutil.which("git") is None or not HTTP_BACKEND.is_file():
        missing("git and git-http-backend")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Remote, Remote, GitHttpServer]]:
    parent, lib = submodule_repos(tmp_path / "srv")
    with serve_git(tmp_path / "srv", username="oauth2", password=TOKEN) as server:
        yield parent, lib, server


@pytest.fixture
def public_pinned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``pinned.invalid`` passes the check as a public host whose address is the loopback
    server's; every other host is checked for real."""
    asked: list[str] = []

    def fake(target: Endpoint, what: str = "repository") -> list[str]:
        asked.append(target.host)
        return ["127.0.0.1"] if target.host == PINNED else resolve_public(target, what)

    monkeypatch.setattr(git_source, "resolve_public", fake)
    return asked


def _spec(server: GitHttpServer, remote: Remote, **kw: object) -> GitSourceSpec:
    url = server.url(remote).replace("127.0.0.1", PINNED)
    return GitSourceSpec(url, password=TOKEN, provider=SourceType.GITLAB, **kw)  # type: ignore[arg-type]


def test_git_connects_to_the_address_that_was_checked(
    served: tuple[Remote, Remote, GitHttpServer], public_pinned: list[str], tmp_path: Path
) -> None:
    parent, _, server = served
    client = GitPythonClient(block_private=True)
    result = client.clone(
        _spec(server, parent), tmp_path / "out", log=Recorder(), cancel=CancelToken()
    )
    assert result.commit_sha == parent.head
    assert public_pinned == [PINNED]
    assert server.seen_users, "the fetch reached the server through the pinned address"


def test_without_the_pin_the_name_does_not_resolve(
    served: tuple[Remote, Remote, GitHttpServer], tmp_path: Path
) -> None:
    parent, _, server = served
    with pytest.raises(SourceError, match="could not be resolved"):
        GitPythonClient(block_private=True).clone(
            _spec(server, parent), tmp_path / "out", log=Recorder(), cancel=CancelToken()
        )


def test_a_submodule_on_a_private_host_is_refused(
    served: tuple[Remote, Remote, GitHttpServer], public_pinned: list[str], tmp_path: Path
) -> None:
    parent, lib, server = served
    set_submodule_url(parent, server.url(lib))  # http://127.0.0.1:port/lib.git
    client = GitPythonClient(block_private=True)
    with pytest.raises(SourceError, match="submodule host '127.0.0.1' is not allowed"):
        client.clone(
            _spec(server, parent, submodules=True),
            tmp_path / "out",
            log=Recorder(),
            cancel=CancelToken(),
        )
    assert not (tmp_path / "out").exists()


def test_a_relative_submodule_url_may_not_climb_to_another_host(
    served: tuple[Remote, Remote, GitHttpServer], public_pinned: list[str], tmp_path: Path
) -> None:
    parent, _, server = served
    set_submodule_url(parent, "../../../169.254.169.254/latest.git")
    client = GitPythonClient(block_private=True)
    with pytest.raises(SourceError, match="leaves the repository's host"):
        client.clone(
            _spec(server, parent, submodules=True),
            tmp_path / "out",
            log=Recorder(),
            cancel=CancelToken(),
        )


def test_the_same_relative_submodule_is_fetched_when_it_stays_on_the_host(
    served: tuple[Remote, Remote, GitHttpServer], public_pinned: list[str], tmp_path: Path
) -> None:
    parent, lib, server = served
    client = GitPythonClient(block_private=True)
    client.clone(
        _spec(server, parent, submodules=True),
        tmp_path / "out",
        log=Recorder(),
        cancel=CancelToken(),
    )
    assert (tmp_path / "out" / "lib" / "version.txt").read_text() == "2\n"
