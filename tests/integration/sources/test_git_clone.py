"""GitPythonClient against real git: file:// and smart HTTP with Basic auth."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import BadInput, Cancelled, SourceError
from app.sources.git import GitPythonClient
from app.types import CancelToken, GitSourceSpec, LogStream
from tests.services import missing
from tests.support.git_remotes import GitHttpServer, serve_git
from tests.support.recorder import Recorder

USER, PASSWORD = "deployer", "s3cr3t-P@ss"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(autouse=True)
def _needs_git() -> None:
    if shutil.which("git") is None:
        missing("git")


def _rev_parse(bare: Path, ref: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "-C", str(bare), "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()


def _assert_no_secrets(checkout: Path, log: Recorder) -> None:
    config = (checkout / ".git" / "config").read_text()
    for secret in (PASSWORD, TOKEN, "extraheader", "Authorization"):
        assert secret.lower() not in config.lower()
        assert secret not in log.text


def test_clone_over_file_url(git_repo: Callable[..., Path], tmp_path: Path) -> None:
    bare = git_repo("static-ok")
    log = Recorder()
    result = GitPythonClient().clone(
        GitSourceSpec(f"file://{bare}", branch="main"), tmp_path / "out", log=log,
        cancel=CancelToken(),
    )  # fmt: skip
    assert result.commit_sha == _rev_parse(bare)
    assert result.commit_message == "initial"
    assert (tmp_path / "out" / "Dockerfile").is_file()
    assert (tmp_path / "out" / "www" / "index.html").is_file()
    assert log.lines[0] == (LogStream.SYSTEM, f"Cloning file://{bare} (branch main)")
    assert log.lines[-1] == (LogStream.SYSTEM, f"Checked out {result.commit_sha} initial")
    _assert_no_secrets(tmp_path / "out", log)
    shallow = subprocess.run(
        ["git", "-C", str(tmp_path / "out"), "rev-list", "--count", "HEAD"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shallow.stdout.strip() == "1"


def test_missing_branch_reports_gits_reason(git_repo: Callable[..., Path], tmp_path: Path) -> None:
    bare = git_repo("static-ok")
    with pytest.raises(SourceError) as info:
        GitPythonClient().clone(
            GitSourceSpec(f"file://{bare}", branch="nope"), tmp_path / "out", log=Recorder(),
            cancel=CancelToken(),
        )  # fmt: skip
    assert str(info.value) == (
        f"git clone of file://{bare} (branch nope) failed: "
        "branch nope not found (couldn't find remote ref refs/heads/nope)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "spec",
    [
        GitSourceSpec("--upload-pack=touch {marker}"),
        GitSourceSpec("file://{bare}", branch="--upload-pack=touch {marker}"),
        GitSourceSpec("ext::sh -c touch% {marker}"),
    ],
)
def test_option_injection_is_rejected(
    spec: GitSourceSpec, git_repo: Callable[..., Path], tmp_path: Path
) -> None:
    bare, marker = git_repo("static-ok"), tmp_path / "pwned"
    spec = GitSourceSpec(
        spec.repository.format(marker=marker, bare=bare),
        branch=spec.branch and spec.branch.format(marker=marker),
    )
    with pytest.raises(BadInput):
        GitPythonClient().clone(spec, tmp_path / "out", log=Recorder(), cancel=CancelToken())
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.fixture
def http_repo(git_repo: Callable[..., Path]) -> Iterator[tuple[Path, GitHttpServer]]:
    bare = git_repo("static-ok")
    with serve_git(bare.parent, username=USER, password=PASSWORD) as server:
        yield bare, server


def test_clone_over_http_with_credentials(
    http_repo: tuple[Path, GitHttpServer], tmp_path: Path
) -> None:
    bare, server = http_repo
    url = f"{server.base_url}/{bare.name}"
    log = Recorder()
    result = GitPythonClient().clone(
        GitSourceSpec(url, branch="main", username=USER, password=PASSWORD), tmp_path / "out",
        log=log, cancel=CancelToken(),
    )  # fmt: skip
    assert result.commit_sha == _rev_parse(bare)
    assert USER in server.seen_users, "the credentials were sent"
    _assert_no_secrets(tmp_path / "out", log)


def test_credentials_embedded_in_the_url_are_not_persisted(
    http_repo: tuple[Path, GitHttpServer], tmp_path: Path
) -> None:
    bare, server = http_repo
    url = server.base_url.replace("://", f"://{USER}:s3cr3t-P%40ss@") + f"/{bare.name}"
    log = Recorder()
    GitPythonClient().clone(GitSourceSpec(url), tmp_path / "out", log=log, cancel=CancelToken())
    _assert_no_secrets(tmp_path / "out", log)
    assert "s3cr3t-P%40ss" not in (tmp_path / "out" / ".git" / "config").read_text()
    assert log.lines[0][1] == f"Cloning {server.base_url}/{bare.name}"


def test_wrong_credentials_fail_without_echoing_them(
    http_repo: tuple[Path, GitHttpServer], tmp_path: Path
) -> None:
    bare, server = http_repo
    log = Recorder()
    with pytest.raises(SourceError) as info:
        GitPythonClient().clone(
            GitSourceSpec(f"{server.base_url}/{bare.name}", username=USER, password="wrong-pw"),
            tmp_path / "out", log=log, cancel=CancelToken(),
        )  # fmt: skip
    message = str(info.value)
    assert message.startswith(f"git clone of {server.base_url}/{bare.name} failed: ")
    assert "wrong-pw" not in message and "wrong-pw" not in log.text
    assert "the repository asked for credentials or rejected them" in message
    assert not (tmp_path / "out").exists()


def test_cancel_kills_a_stalled_clone(
    http_repo: tuple[Path, GitHttpServer], tmp_path: Path
) -> None:
    bare, server = http_repo
    server.stall.set()
    cancel = CancelToken()
    threading.Timer(0.5, cancel.cancel, args=("user asked",)).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="user asked"):
        GitPythonClient().clone(
            GitSourceSpec(f"{server.base_url}/{bare.name}", username=USER, password=PASSWORD),
            tmp_path / "out", log=Recorder(), cancel=cancel,
        )  # fmt: skip
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out").exists()
