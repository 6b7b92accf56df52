"""The real :class:`GitClient`: a depth-1 single-branch clone with the git CLI via GitPython.

Credentials travel only in the environment of the git process (an ``http.extraHeader``
scoped to the repository's origin through ``GIT_CONFIG_*``); they are never in argv,
never written to ``.git/config`` and masked in every log line and error message.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlsplit

import git

from app.errors import SourceError, SourceNetworkError
from app.masking import Masker
from app.processes import killed_on_cancel
from app.sources.base import FetchResult
from app.sources.validate import split_credentials, validate_ref, validate_repository
from app.types import CancelToken, GitSourceSpec, LogFn, LogStream

logger = logging.getLogger(__name__)

ALLOWED_PROTOCOLS = ("https", "http", "ssh", "git", "file")
SSH_COMMAND = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
PROGRESS_INTERVAL_S = 1.0
_SEGMENT = re.compile(rb"[^\r\n]*[\r\n]")
_ERROR_PREFIX = re.compile(r"^(fatal|error): ")
# git's words for a network that failed, as opposed to a wrong URL, branch or password.
_NETWORK = re.compile(
    r"Could not resolve host|Failed to connect|Connection (refused|timed out|reset)|"
    r"Operation timed out|early EOF|RPC failed|remote end hung up unexpectedly|"
    r"returned error: 5\d\d|SSL_ERROR_SYSCALL|Temporary failure in name resolution",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CloneTarget:
    """A validated clone request: the clean URL and the credentials split off it."""

    url: str
    branch: str | None
    username: str | None
    password: str | None

    @classmethod
    def from_spec(cls, spec: GitSourceSpec) -> CloneTarget:
        """Validate ``spec``; credentials in the spec win over ones embedded in the URL."""
        url, url_user, url_password = split_credentials(validate_repository(spec.repository))
        branch = validate_ref(spec.branch) if spec.branch else None
        password = spec.password if spec.password is not None else url_password
        username = spec.username if spec.username is not None else url_user
        return cls(url=url, branch=branch, username=username, password=password)

    @property
    def describe(self) -> str:
        return f"{self.url} (branch {self.branch})" if self.branch else self.url

    def secrets(self) -> list[str]:
        """Every form in which the password could show up in git's output."""
        if not self.password:
            return []
        forms = {self.password, quote(self.password, safe=""), self._basic_token()}
        return sorted(forms, key=len, reverse=True)

    def _basic_token(self) -> str:
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return base64.b64encode(raw).decode("ascii")

    def auth_header(self) -> str | None:
        """``Authorization: Basic ...`` for http(s) URLs with a password, else None."""
        if self.password is None or urlsplit(self.url).scheme.lower() not in ("http", "https"):
            return None
        return f"Authorization: Basic {self._basic_token()}"


def clone_command(target: CloneTarget, dest: Path) -> list[str]:
    """The git argv: options first, then ``--`` so neither URL nor path can pass as one."""
    command = ["git", "clone", "--progress", "--depth", "1", "--single-branch", "--no-tags"]
    if target.branch:
        command += ["--branch", target.branch]
    return [*command, "--", target.url, str(dest)]


def clone_env(target: CloneTarget) -> dict[str, str]:
    """Environment for the git process: no prompts, allowed protocols, credentials."""
    config: list[tuple[str, str]] = [("protocol.allow", "never")]
    config += [(f"protocol.{name}.allow", "always") for name in ALLOWED_PROTOCOLS]
    config += [("credential.helper", ""), ("core.askPass", "")]
    header = target.auth_header()
    if header is not None:
        parts = urlsplit(target.url)
        config.append((f"http.{parts.scheme}://{parts.netloc}/.extraHeader", header))
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    # GIT_CONFIG_PARAMETERS would carry a parent's ``git -c``; ours are the only ones
    env.update({"GIT_SSH_COMMAND": SSH_COMMAND, "GIT_CONFIG_PARAMETERS": ""})
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


class GitPythonClient:
    """Clones with ``git clone --depth 1 --single-branch`` and streams its progress."""

    def __init__(self) -> None:
        self._git = git.Git()

    def clone(
        self, spec: GitSourceSpec, dest: Path, *, log: LogFn, cancel: CancelToken
    ) -> FetchResult:
        """Clone ``spec`` into ``dest`` (absent or empty) and report the checked-out commit."""
        target = CloneTarget.from_spec(spec)
        mask = Masker(target.secrets())
        cancel.check()
        existed = _check_destination(dest)
        log(f"Cloning {target.describe}", stream=LogStream.SYSTEM)
        try:
            errors = self._run(target, dest, log=log, mask=mask, cancel=cancel)
        except BaseException:
            _discard(dest, existed=existed)
            raise
        if errors is not None:
            _discard(dest, existed=existed)
            kind = SourceNetworkError if _NETWORK.search(errors) else SourceError
            raise kind(f"git clone of {target.describe} failed: {mask(errors)}")
        return _checked_out(dest, log=log, mask=mask)

    def _run(
        self, target: CloneTarget, dest: Path, *, log: LogFn, mask: Masker, cancel: CancelToken
    ) -> str | None:
        """Run git; return its error text if it failed, None on success."""
        try:
            process = self._git.execute(
                clone_command(target, dest.absolute()),
                as_process=True,
                with_stdout=False,
                env=clone_env(target),
                start_new_session=True,
            )
        except (OSError, git.GitCommandError) as exc:
            raise SourceError(f"could not start git: {mask(str(exc))}") from exc
        proc = process.proc
        if proc is None:
            raise SourceError("could not start git: no process")
        try:
            with killed_on_cancel(proc, cancel):  # git forks remote-https, index-pack
                tail = _stream_progress(proc.stderr, log=log, mask=mask)
                code = proc.wait()
        finally:
            if proc.stderr is not None:
                proc.stderr.close()
        cancel.check()
        return None if code == 0 else _summarise(tail, code)


def _segments(stream: IO[bytes]) -> Iterator[tuple[str, bool]]:
    """Yield (text, is_complete_line) as git writes; ``\\r`` ends an in-place progress update."""
    buffer = b""
    while chunk := os.read(stream.fileno(), 65536):
        buffer += chunk
        end = 0
        for match in _SEGMENT.finditer(buffer):
            yield match.group()[:-1].decode("utf-8", "replace"), match.group().endswith(b"\n")
            end = match.end()
        buffer = buffer[end:]
    if buffer:
        yield buffer.decode("utf-8", "replace"), True


def _stream_progress(stream: IO[bytes] | None, *, log: LogFn, mask: Masker) -> deque[str]:
    """Send git's stderr to ``log`` (progress throttled); return its last full lines."""
    tail: deque[str] = deque(maxlen=20)
    if stream is None:
        return tail
    last_progress = float("-inf")
    for text, complete in _segments(stream):
        text = mask(text.rstrip())
        if not text:
            continue
        if complete:
            tail.append(text)
        elif time.monotonic() - last_progress < PROGRESS_INTERVAL_S:
            continue
        else:
            last_progress = time.monotonic()
        log(text, stream=LogStream.STDOUT)
    return tail


def _summarise(tail: deque[str], code: int) -> str:
    """git's own reason: its fatal/error lines, else its last lines."""
    reasons = [_ERROR_PREFIX.sub("", line) for line in tail if _ERROR_PREFIX.match(line)]
    chosen = reasons or [line for line in tail if not line.startswith("Cloning into")][-3:]
    summary = "; ".join(chosen) or f"git exited with code {code}"
    if "terminal prompts disabled" in summary:
        return f"the repository asked for credentials or rejected them ({summary})"
    return summary


def _checked_out(dest: Path, *, log: LogFn, mask: Masker) -> FetchResult:
    try:
        with git.Repo(dest) as repo:
            commit = repo.head.commit
            sha, message = commit.hexsha, mask(str(commit.summary))
    except (git.GitError, ValueError, OSError) as exc:
        raise SourceError(f"cloned into {dest} but cannot read HEAD: {exc}") from exc
    log(f"Checked out {sha} {message}", stream=LogStream.SYSTEM)
    return FetchResult(path=dest, commit_sha=sha, commit_message=message)


def _check_destination(dest: Path) -> bool:
    """True if ``dest`` exists (and is empty); refuse to clone over anything in it."""
    if not dest.exists():
        return False
    if not dest.is_dir() or any(dest.iterdir()):
        raise SourceError(f"clone destination {dest} exists and is not an empty directory")
    return True


def _discard(dest: Path, *, existed: bool) -> None:
    """Remove what a failed clone left behind, keeping a directory the caller made."""
    if not dest.exists():
        return
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
