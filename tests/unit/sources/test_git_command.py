"""The git argv and environment, built without running git."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import git
import pytest

from app.errors import BadInput
from app.masking import Masker
from app.sources import git as gitmod
from app.sources.git import CloneTarget, GitPythonClient, clone_env, fetch_command, init_command
from app.types import CancelToken, GitSourceSpec, LogStream


class Lines(list[str]):
    """A LogFn that keeps the messages."""

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


def _config(env: dict[str, str]) -> dict[str, str]:
    count = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}


def test_commands_separate_user_values_with_double_dash() -> None:
    target = CloneTarget.from_spec(GitSourceSpec("https://u:pw@host/r.git", branch="main"))
    assert init_command(Path("/tmp/x")) == ["git", "init", "--quiet", "--template=", "--", "/tmp/x"]
    assert fetch_command(Path("/tmp/x"), target.ref, depth=1) == [
        "git", "-C", "/tmp/x", "fetch", "--progress", "--no-tags", "--recurse-submodules=no",
        "--depth", "1", "--", "origin", "refs/heads/main",
    ]  # fmt: skip


def test_without_branch_the_default_branch_is_fetched() -> None:
    assert CloneTarget.from_spec(GitSourceSpec("git@host:r.git")).ref == "HEAD"
    assert CloneTarget.from_spec(GitSourceSpec("git@host:r.git", tag="v1")).ref == "refs/tags/v1"


def test_credentials_travel_only_in_a_scoped_header() -> None:
    spec = GitSourceSpec("https://host:8443/g/r.git", username="bob", password="s3cr3t")
    target = CloneTarget.from_spec(spec)
    env, argv = clone_env(target), fetch_command(Path("/d"), target.ref, depth=1)
    token = base64.b64encode(b"bob:s3cr3t").decode()
    assert _config(env)["http.https://host:8443/.extraHeader"] == f"Authorization: Basic {token}"
    assert not any("s3cr3t" in arg or token in arg for arg in argv)
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"] == ""


def test_url_credentials_are_split_off_and_spec_credentials_win() -> None:
    from_url = CloneTarget.from_spec(GitSourceSpec("https://a:b@host/r"))
    assert (from_url.url, from_url.username, from_url.password) == ("https://host/r", "a", "b")
    spec = GitSourceSpec("https://a:b@host/r", username="c", password="d")
    both = CloneTarget.from_spec(spec)
    assert (both.username, both.password) == ("c", "d")


def test_environment_restricts_protocols_and_disables_prompts() -> None:
    config = _config(clone_env(CloneTarget.from_spec(GitSourceSpec("ssh://git@host/r"))))
    assert config["protocol.allow"] == "never"
    assert "protocol.ext.allow" not in config and "protocol.fd.allow" not in config
    assert {config[f"protocol.{p}.allow"] for p in ("https", "http", "ssh", "git")} == {"always"}
    assert "protocol.file.allow" not in config, "file:// only for a file:// repository"
    assert config["credential.helper"] == ""
    assert not any("extraHeader" in key for key in config)


def test_ssh_is_batch_mode() -> None:
    env = clone_env(CloneTarget.from_spec(GitSourceSpec("git@host:r")))
    assert "-o BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]


def test_password_on_ssh_url_is_not_sent_as_header() -> None:
    target = CloneTarget.from_spec(GitSourceSpec("ssh://git@host/r", password="pw"))
    assert target.auth_header() is None


def test_masker_hides_every_form_of_the_password() -> None:
    target = CloneTarget.from_spec(GitSourceSpec("https://host/r", username="u", password="p@ss"))
    mask = Masker(target.secrets())
    token = base64.b64encode(b"u:p@ss").decode()
    text = f"p@ss p%40ss Basic {token}"
    assert mask(text) == "******** ******** Basic ********"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (GitSourceSpec("--upload-pack=touch /tmp/pwned"), "repository URL"),
        (GitSourceSpec("https://host/r", branch="--upload-pack=touch /tmp/pwned"), "branch"),
        (GitSourceSpec("ext::sh -c touch% /tmp/pwned"), "repository URL"),
    ],
)
def test_clone_rejects_injection_before_running_git(
    spec: GitSourceSpec, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git.Git, "execute", _must_not_run)
    with pytest.raises(BadInput, match=fragment):
        GitPythonClient().clone(spec, tmp_path / "d", log=_ignore, cancel=CancelToken())
    assert not (tmp_path / "d").exists()


def _must_not_run(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("git must not run")


def _ignore(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
    pass


def test_progress_is_throttled_and_full_lines_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitmod, "PROGRESS_INTERVAL_S", 3600.0)
    output = b"Cloning into 'x'...\nReceiving:  1%\rReceiving: 50%\rReceiving: 100%, done.\n"
    logged = Lines()
    read, write = os.pipe()
    os.write(write, output + b"fatal: pw went wrong\n")
    os.close(write)
    with open(read, "rb") as stream:
        tail = gitmod._stream_progress(stream, log=logged, mask=Masker(["pw"]))
    failed = gitmod._Failed(tuple(tail), 128)
    assert logged == [
        "Cloning into 'x'...",
        "Receiving:  1%",
        "Receiving: 100%, done.",
        "fatal: ******** went wrong",
    ]
    assert gitmod._summarise(failed) == "******** went wrong"


def test_summary_falls_back_to_last_lines() -> None:
    tail = ("Cloning into 'x'...", "something odd")
    assert gitmod._summarise(gitmod._Failed(tail, 1)) == "something odd"
    assert gitmod._summarise(gitmod._Failed((), 9)) == "git exited with code 9"


def test_summary_explains_a_credential_prompt() -> None:
    tail = ("fatal: could not read Username for 'https://h': terminal prompts disabled",)
    assert gitmod._summarise(gitmod._Failed(tail, 128)) == (
        "the repository asked for credentials or rejected them "
        "(could not read Username for 'https://h': terminal prompts disabled)"
    )
