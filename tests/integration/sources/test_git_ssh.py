"""GitPythonClient over ssh against a real sshd of the test's own: per-job key files,
trust on first use, pinned host keys."""

from __future__ import annotations

import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.errors import Cancelled, SourceError
from app.sources import git as gitmod
from app.sources.base import FetchResult
from app.sources.git import GitPythonClient
from app.sources.ssh import SshSession
from app.types import CancelToken, GitSourceSpec, LogStream
from tests.services import missing
from tests.support.git_remotes import (
    KeyPair,
    Remote,
    Sshd,
    history_repo,
    make_key,
    run_sshd,
    sshd_available,
)


@dataclass
class Setup:
    sshd: Sshd
    remote: Remote
    key: KeyPair
    other_key: KeyPair


@pytest.fixture
def ssh_setup(tmp_path: Path) -> Iterator[Setup]:
    if not sshd_available() or shutil.which("git") is None:
        missing("/usr/sbin/sshd, ssh, ssh-keygen and git (scripts/services up sshd)")
    keys = tmp_path / "keys"
    keys.mkdir()
    key, other = make_key(keys, "one"), make_key(keys, "two")
    remote = history_repo(tmp_path / "srv")
    with run_sshd(tmp_path / "sshd", [key.public, other.public]) as sshd:
        yield Setup(sshd=sshd, remote=remote, key=key, other_key=other)


class Sessions:
    """Records every SshSession a clone opens, and what its files looked like while open."""

    def __init__(self) -> None:
        self.key_paths: list[Path] = []  # in the order the sessions were opened
        self.modes: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, str] = {}
        self.lock = threading.Lock()

    def factory(self, **kwargs: str | None) -> SshSession:
        sessions = self

        class Recording(SshSession):
            def __enter__(self) -> SshSession:
                entered = super().__enter__()
                with sessions.lock:
                    key = entered.key_path
                    sessions.key_paths.append(key)
                    sessions.modes[key] = (
                        stat.S_IMODE(key.stat().st_mode),
                        stat.S_IMODE(entered.directory.stat().st_mode),
                    )
                    sessions.keys[key] = key.read_text()
                return entered

        return Recording(**kwargs)


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Sessions:
    recorder = Sessions()
    monkeypatch.setattr(gitmod, "SshSession", recorder.factory)
    return recorder


class KeyWatcher:
    """A LogFn that checks, while git is running, that the key file is there and 0600."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.seen_while_running: list[int] = []
        self.lines: list[str] = []

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.lines.append(message)
        if stream is LogStream.STDOUT and self.sessions.key_paths:
            key = self.sessions.key_paths[-1]
            if key.exists():
                self.seen_while_running.append(stat.S_IMODE(key.stat().st_mode))


def _spec(setup: Setup, **kw: object) -> GitSourceSpec:
    return GitSourceSpec(setup.sshd.url(setup.remote), branch="main", **kw)  # type: ignore[arg-type]


def test_clone_with_key_records_the_host_key_and_removes_the_key(
    ssh_setup: Setup, sessions: Sessions, tmp_path: Path
) -> None:
    log = KeyWatcher(sessions)
    result = GitPythonClient().clone(
        _spec(ssh_setup, ssh_key=ssh_setup.key.private), tmp_path / "out", log=log,
        cancel=CancelToken(),
    )  # fmt: skip
    assert result.commit_sha == ssh_setup.remote.head
    assert (tmp_path / "out" / "version.txt").read_text() == "2\n"
    assert result.known_hosts == ssh_setup.sshd.known_hosts, "trust on first use"
    assert log.seen_while_running and set(log.seen_while_running) == {0o600}
    (key,) = sessions.key_paths
    assert sessions.modes[key] == (0o600, 0o700)
    assert not key.exists() and not key.parent.exists()
    assert ssh_setup.key.private.strip() not in "\n".join(log.lines)
    assert "BEGIN OPENSSH" not in (tmp_path / "out" / ".git" / "config").read_text()


def test_exact_commit_with_the_right_pinned_host_key(ssh_setup: Setup, tmp_path: Path) -> None:
    spec = GitSourceSpec(
        ssh_setup.sshd.url(ssh_setup.remote), ssh_key=ssh_setup.key.private,
        commit_sha=ssh_setup.remote.shas[0], known_hosts=ssh_setup.sshd.known_hosts,
    )  # fmt: skip
    result = GitPythonClient().clone(spec, tmp_path / "out", log=_ignore, cancel=CancelToken())
    assert result.commit_sha == ssh_setup.remote.shas[0]
    assert result.known_hosts is None, "pinned keys are not recorded again"


def test_pinned_wrong_host_key_fails_with_a_host_key_message(
    ssh_setup: Setup, tmp_path: Path
) -> None:
    impostor = make_key(tmp_path, "impostor").public.split()
    pinned = f"[127.0.0.1]:{ssh_setup.sshd.port} {impostor[0]} {impostor[1]}\n"
    with pytest.raises(SourceError) as info:
        GitPythonClient().clone(
            _spec(ssh_setup, ssh_key=ssh_setup.key.private, known_hosts=pinned),
            tmp_path / "out", log=_ignore, cancel=CancelToken(),
        )  # fmt: skip
    message = str(info.value)
    assert "host key mismatch" in message and "not the one pinned in knownHosts" in message
    assert not (tmp_path / "out").exists()


def test_unauthorised_key_fails_without_showing_it(ssh_setup: Setup, tmp_path: Path) -> None:
    stranger = make_key(tmp_path, "stranger")
    with pytest.raises(SourceError) as info:
        GitPythonClient().clone(
            _spec(ssh_setup, ssh_key=stranger.private), tmp_path / "out", log=_ignore,
            cancel=CancelToken(),
        )  # fmt: skip
    assert "Permission denied" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)


def test_concurrent_clones_use_their_own_key_files(
    ssh_setup: Setup, sessions: Sessions, tmp_path: Path
) -> None:
    results: dict[str, FetchResult] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def clone(name: str, key: KeyPair) -> None:
        barrier.wait()
        try:
            results[name] = GitPythonClient().clone(
                _spec(ssh_setup, ssh_key=key.private), tmp_path / name, log=_ignore,
                cancel=CancelToken(),
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=clone, args=("a", ssh_setup.key)),
        threading.Thread(target=clone, args=("b", ssh_setup.other_key)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert {r.commit_sha for r in results.values()} == {ssh_setup.remote.head}
    paths = sessions.key_paths
    assert len(paths) == 2 and paths[0] != paths[1] and paths[0].parent != paths[1].parent
    assert sorted(sessions.keys[p].strip() for p in paths) == sorted(
        k.private.strip() for k in (ssh_setup.key, ssh_setup.other_key)
    )
    assert not any(p.exists() for p in paths)


def test_key_file_is_removed_when_the_clone_fails(
    ssh_setup: Setup, sessions: Sessions, tmp_path: Path
) -> None:
    with pytest.raises(SourceError):
        GitPythonClient().clone(
            GitSourceSpec(ssh_setup.sshd.url(ssh_setup.remote), branch="nope",
                          ssh_key=ssh_setup.key.private),
            tmp_path / "out", log=_ignore, cancel=CancelToken(),
        )  # fmt: skip
    (key,) = sessions.key_paths
    assert not key.parent.exists()


def _ignore(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
    pass


def test_key_file_is_removed_when_the_clone_is_cancelled(
    ssh_setup: Setup, sessions: Sessions, tmp_path: Path
) -> None:
    cancel = CancelToken()

    def cancel_on_first_output(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        if stream is LogStream.STDOUT:  # git is running, its key file in place
            assert sessions.key_paths and sessions.key_paths[-1].exists()
            cancel.cancel("user asked")

    with pytest.raises(Cancelled, match="user asked"):
        GitPythonClient().clone(
            _spec(ssh_setup, ssh_key=ssh_setup.key.private), tmp_path / "out",
            log=cancel_on_first_output, cancel=cancel,
        )  # fmt: skip
    (key,) = sessions.key_paths
    assert not key.parent.exists()
    assert not (tmp_path / "out").exists()
