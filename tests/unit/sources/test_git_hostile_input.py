"""Hostile repository URLs, refs and shas are refused with BadInput before any process runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import git
import pytest

from app.errors import BadInput
from app.sources.git import GitPythonClient
from app.sources.validate import validate_commit_sha, validate_submodule_url
from app.types import CancelToken, GitSourceSpec, LogStream

GOOD = "https://example.invalid/acme/web.git"
HOSTILE = [
    pytest.param(
        GitSourceSpec("--upload-pack=touch /tmp/x"), "must not start with '-'", id="upload-pack"
    ),
    pytest.param(GitSourceSpec("-uhttps://x/y"), "must not start with '-'", id="dash-u"),
    pytest.param(GitSourceSpec("ext::sh -c touch% /tmp/pwned"), "repository", id="ext"),
    pytest.param(GitSourceSpec("ext::sh"), "repository must be", id="ext-no-space"),
    pytest.param(GitSourceSpec("fd::3"), "repository must be", id="fd"),
    pytest.param(
        GitSourceSpec("ssh://-oProxyCommand=touch%20/tmp/x/r"), "no valid host", id="ssh-host-dash"
    ),
    pytest.param(
        GitSourceSpec("ssh://-oProxyCommand=x@host/r"), "user must not start", id="ssh-user-dash"
    ),
    pytest.param(
        GitSourceSpec("-oProxyCommand=x@host:r"), "must not start with '-'", id="scp-dash"
    ),
    pytest.param(GitSourceSpec("x@-oProxyCommand=y:r"), "repository must be", id="scp-host-dash"),
    pytest.param(GitSourceSpec(GOOD, branch="--upload-pack=x"), "branch", id="branch-dash"),
    pytest.param(GitSourceSpec(GOOD, branch="a/../b"), "'..'", id="branch-dotdot"),
    pytest.param(GitSourceSpec(GOOD, tag="-x"), "tag", id="tag-dash"),
    pytest.param(GitSourceSpec(GOOD, tag="v1..v2"), "'..'", id="tag-dotdot"),
    pytest.param(GitSourceSpec(GOOD, commit_sha="--foo"), "commit sha", id="sha-option"),
    pytest.param(GitSourceSpec(GOOD, commit_sha="HEAD~1"), "commit sha", id="sha-rev"),
    pytest.param(GitSourceSpec(GOOD, commit_sha="abc12"), "commit sha", id="sha-short"),
    pytest.param(GitSourceSpec(GOOD, commit_sha="g" * 40), "commit sha", id="sha-not-hex"),
    pytest.param(GitSourceSpec(GOOD, commit_sha="a" * 65), "commit sha", id="sha-too-long"),
]


def _no_process(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a process was started for hostile input")


def _ignore(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
    pass


@pytest.mark.parametrize(("spec", "fragment"), HOSTILE)
def test_hostile_spec_is_bad_input_before_any_process(
    spec: GitSourceSpec, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "Popen", _no_process)
    monkeypatch.setattr(git.Git, "execute", _no_process)
    with pytest.raises(BadInput, match=fragment):
        GitPythonClient().clone(spec, tmp_path / "out", log=_ignore, cancel=CancelToken())
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.iterdir()), "nothing written, not even an ssh key directory"


@pytest.mark.parametrize("sha", ["abc1234", "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "a" * 64])
def test_good_shas_pass_lowercased(sha: str) -> None:
    assert validate_commit_sha(sha) == sha.lower()


@pytest.mark.parametrize(
    ("url", "parent"),
    [
        ("../lib.git", "https://h/a/app.git"),
        ("./lib.git", "https://h/a/app.git"),
        ("https://h/lib.git", "https://h/a/app.git"),
        ("git@h:lib.git", "https://h/a/app.git"),
        ("ssh://git@h/lib.git", "https://h/a/app.git"),
        ("git://h/lib.git", "https://h/a/app.git"),
        ("file:///srv/lib.git", "file:///srv/app.git"),
    ],
)
def test_allowed_submodule_urls(url: str, parent: str) -> None:
    assert validate_submodule_url(url, parent=parent) == url


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/x",
        "fd::3",
        "file:///srv/lib.git",
        "-oProxyCommand=x",
        "ssh://-oProxyCommand=x/y",
        "ftp://h/lib.git",
        "../lib .git",
    ],
)
def test_refused_submodule_urls(url: str) -> None:
    with pytest.raises(BadInput):
        validate_submodule_url(url, parent="https://h/a/app.git")
