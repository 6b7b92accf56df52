"""Provider token usernames, the per-job ssh session, and reading git's and ssh's lines."""

from __future__ import annotations

import base64
import os
import shlex
import stat
import tempfile
from pathlib import Path

import pytest

from app.masking import Masker
from app.sources import git as gitmod
from app.sources.git import CloneTarget
from app.sources.ssh import SshSession, host_key_problem
from app.types import GitSourceSpec, LogStream, RegistryAuth, SourceType

URL = "https://example.invalid/acme/web.git"


class Lines(list[str]):
    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


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
def test_a_token_alone_gets_the_providers_username(provider: SourceType, username: str) -> None:
    target = CloneTarget.from_spec(GitSourceSpec(URL, password="tok", provider=provider))
    assert target.username == username
    token = base64.b64encode(f"{username}:tok".encode()).decode()
    assert target.auth_header() == f"Authorization: Basic {token}"


def test_a_given_username_is_kept_and_no_password_means_no_header() -> None:
    spec = GitSourceSpec(URL, username="me", password="tok", provider=SourceType.GITHUB)
    assert CloneTarget.from_spec(spec).username == "me"
    bare = CloneTarget.from_spec(GitSourceSpec(URL, provider=SourceType.GITHUB))
    assert bare.username is None and bare.auth_header() is None


def test_session_files_are_private_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Path(tempfile.mkdtemp(prefix="with space "))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    with SshSession(key="KEY-TEXT\r\nMORE", known_hosts=None) as session:
        key = session.key_path
        assert stat.S_IMODE(session.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text() == "KEY-TEXT\nMORE\n"
        argv = shlex.split(session.command())
        assert argv[argv.index("-i") + 1] == str(key), "paths with spaces stay one argument"
        assert "StrictHostKeyChecking=accept-new" in argv and "IdentitiesOnly=yes" in argv
        assert f"UserKnownHostsFile={session.known_hosts_path}" in argv
        assert argv[:3] == ["ssh", "-F", "/dev/null"] and "BatchMode=yes" in argv
        assert session.recorded() is None, "nothing seen yet"
        session.known_hosts_path.write_text("[h]:22 ssh-ed25519 AAAA\n")
        assert session.recorded() == "[h]:22 ssh-ed25519 AAAA\n"
    assert not key.exists() and not key.parent.exists()
    os.rmdir(base)


def test_session_is_removed_when_the_job_fails() -> None:
    with pytest.raises(RuntimeError), SshSession(key="k", known_hosts=None) as session:
        directory = session.directory
        raise RuntimeError("clone failed")
    assert not directory.exists()


def test_pinned_hosts_check_strictly_and_are_not_recorded_again() -> None:
    with SshSession(key=None, known_hosts="h ssh-ed25519 AAAA\n") as session:
        argv = shlex.split(session.command())
        assert "StrictHostKeyChecking=yes" in argv and "-i" not in argv
        assert session.known_hosts_path.read_text() == "h ssh-ed25519 AAAA\n"
        assert session.recorded() is None


def test_host_key_failures_are_explained() -> None:
    changed = (
        "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed."
    )
    assert (host_key_problem(changed, where="h") or "").startswith("host key mismatch: the SSH")
    unknown = "No ED25519 host key is known for h\nHost key verification failed."
    assert "host key mismatch" in (host_key_problem(unknown, where="h") or "")
    assert host_key_problem("fatal: repository not found", where="h") is None


def test_crlf_lines_are_whole_lines_even_split_across_reads() -> None:
    read, write = os.pipe()
    os.write(write, b"Permission denied (publickey).\r")
    os.write(write, b"\nfatal: Could not read from remote repository.\n")
    os.close(write)
    with open(read, "rb") as stream:
        lines = Lines()
        tail = gitmod._stream_progress(stream, log=lines, mask=Masker([]))
    assert lines == [
        "Permission denied (publickey).",
        "fatal: Could not read from remote repository.",
    ]
    summary = gitmod._summarise(gitmod._Failed(tuple(tail), 128))
    assert summary == "Permission denied (publickey).; Could not read from remote repository."


def test_source_specs_never_print_their_secrets() -> None:
    """A spec in a log line, a traceback or an assertion message shows no credential."""
    spec = GitSourceSpec("https://example.invalid/r.git", password="tok-123", ssh_key="KEY-456")
    auth = RegistryAuth(username="u", password="pw-789", registry="r.example")
    shown = repr(spec) + str(spec) + repr(auth)
    assert "example.invalid" in shown and "r.example" in shown
    for secret in ("tok-123", "KEY-456", "pw-789"):
        assert secret not in shown
