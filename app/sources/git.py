"""The real :class:`GitClient`: ``git init`` and a shallow ``git fetch`` of a branch, tag or commit.

Credentials travel only in the environment of the git process (an ``http.extraHeader``
scoped to the repository's origin through ``GIT_CONFIG_*``; an ssh key in a per-job file
named by ``GIT_SSH_COMMAND``); they are never in argv, never written to ``.git/config``
(its ``origin`` is the URL without credentials) and masked in every log line and error.
Every user value is validated before any process starts.
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

from app.errors import BadInput, SourceError, SourceNetworkError
from app.masking import Masker
from app.processes import killed_on_cancel
from app.sources.addresses import endpoint, pin_config, relative_escapes, resolve_public
from app.sources.base import FetchResult
from app.sources.ssh import SshSession, host_key_problem
from app.sources.validate import (
    split_credentials,
    validate_commit_sha,
    validate_ref,
    validate_repository,
    validate_submodule_url,
)
from app.types import CancelToken, GitSourceSpec, LogFn, LogStream, SourceType

logger = logging.getLogger(__name__)

ALLOWED_PROTOCOLS = ("https", "http", "ssh", "git")  # and file, for a file:// repository only
PROGRESS_INTERVAL_S = 1.0
FALLBACK_DEPTH = 50  # a commit the server will not send by itself is looked for this deep first
# The username each provider expects when only a token (as the password) is given.
# Gitea takes a token as the password with any username; "oauth2" is the one it documents.
TOKEN_USERNAMES: dict[SourceType, str] = {
    SourceType.GITHUB: "x-access-token",
    SourceType.GITLAB: "oauth2",
    SourceType.BITBUCKET: "x-token-auth",
    SourceType.GITEA: "oauth2",
    SourceType.GIT: "git",
}
# a line ends in \n or \r\n (ssh writes those); a lone \r ends an in-place progress update
_SEGMENT = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")
_ERROR_PREFIX = re.compile(r"^(fatal|error): ")
# ssh's own reasons come before git's "Could not read from remote repository"
_SSH_REASON = re.compile(
    r"Permission denied \(|Connection closed by|Connection refused|No route to host|"
    r"Could not resolve hostname|Load key .*: invalid format"
)
_MISSING_REF = re.compile(r"couldn't find remote ref", re.IGNORECASE)
# git's words for a network that failed, as opposed to a wrong URL, branch or password.
_NETWORK = re.compile(
    r"Could not resolve host|Failed to connect|Connection (refused|timed out|reset)|"
    r"Operation timed out|early EOF|RPC failed|remote end hung up unexpectedly|"
    r"returned error: 5\d\d|SSL_ERROR_SYSCALL|"
    r"Temporary failure in name resolution",
    re.IGNORECASE,
)
# failures that would tell a refused port from a filtered one or a non-git service: one
# message for all of them, so that a repository URL cannot be used to map ports
_CONNECT = re.compile(
    r"Failed to connect|Connection (refused|timed out|reset)|Operation timed out|"
    r"No route to host|Network is unreachable|Connection closed by|Empty reply from server|"
    r"Recv failure|kex_exchange_identification|Connection to \S+ closed|HTTP/0\.9|"
    r"SSL_ERROR_SYSCALL",
    re.IGNORECASE,
)
UNREACHABLE = (
    "could not connect to the repository server, or it broke the connection off "
    "(check the URL's host and port, and that it serves git)"
)


@dataclass(frozen=True, slots=True)
class CloneTarget:
    """A validated fetch request: the clean URL, what to check out, the credentials split off."""

    url: str
    branch: str | None = None
    username: str | None = None
    password: str | None = None
    tag: str | None = None
    commit_sha: str | None = None

    @classmethod
    def from_spec(cls, spec: GitSourceSpec) -> CloneTarget:
        """Validate ``spec``; credentials in the spec win over ones embedded in the URL."""
        url, url_user, url_password = split_credentials(validate_repository(spec.repository))
        password = spec.password if spec.password is not None else url_password
        username = spec.username if spec.username is not None else url_user
        if password and not username:
            username = TOKEN_USERNAMES.get(spec.provider, "git")
        return cls(
            url=url,
            branch=validate_ref(spec.branch) if spec.branch else None,
            username=username,
            password=password,
            tag=validate_ref(spec.tag, "tag") if spec.tag else None,
            commit_sha=validate_commit_sha(spec.commit_sha) if spec.commit_sha else None,
        )

    @property
    def ref(self) -> str:
        """What to fetch when no commit is named, or to look for the commit in."""
        if self.tag:
            return f"refs/tags/{self.tag}"
        return f"refs/heads/{self.branch}" if self.branch else "HEAD"

    @property
    def ref_name(self) -> str:
        if self.tag:
            return f"tag {self.tag}"
        return f"branch {self.branch}" if self.branch else "the default branch"

    @property
    def describe(self) -> str:
        named = [f"tag {self.tag}" if self.tag else f"branch {self.branch}" if self.branch else ""]
        named += [f"commit {self.commit_sha}"] if self.commit_sha else []
        shown = ", ".join(n for n in named if n)
        return f"{self.url} ({shown})" if shown else self.url

    @property
    def is_file(self) -> bool:
        return self.url.lower().startswith("file://")

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


def init_command(dest: Path) -> list[str]:
    return ["git", "init", "--quiet", "--template=", "--", str(dest)]


def remote_command(dest: Path, url: str) -> list[str]:
    """``origin`` without credentials: relative submodule URLs resolve against it."""
    return ["git", "-C", str(dest), "remote", "add", "--", "origin", url]


def fetch_command(dest: Path, what: str, *, depth: int | None) -> list[str]:
    """Fetch one ref or commit; ``depth`` None deepens a shallow fetch to the full history."""
    command = ["git", "-C", str(dest), "fetch", "--progress", "--no-tags"]
    command += ["--recurse-submodules=no"]
    command += ["--depth", str(depth)] if depth else ["--unshallow"]
    return [*command, "--", "origin", what]


def checkout_command(dest: Path, sha: str) -> list[str]:
    return ["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "--quiet",
            "--detach", sha, "--"]  # fmt: skip


def submodule_command(dest: Path) -> list[str]:
    return ["git", "-C", str(dest), "submodule", "update", "--init", "--recursive",
            "--depth", "1", "--progress"]  # fmt: skip


def clone_env(
    target: CloneTarget,
    *,
    ssh_command: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Environment for the git process: no prompts, allowed protocols, credentials, and
    ``extra`` config (the pinned address of a checked host)."""
    protocols = (*ALLOWED_PROTOCOLS, "file") if target.is_file else ALLOWED_PROTOCOLS
    config: list[tuple[str, str]] = [("protocol.allow", "never"), *(extra or [])]
    config += [(f"protocol.{name}.allow", "always") for name in protocols]
    config += [("credential.helper", ""), ("core.askPass", "")]
    header = target.auth_header()
    if header is not None:
        parts = urlsplit(target.url)
        config.append((f"http.{parts.scheme}://{parts.netloc}/.extraHeader", header))
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    ssh = ssh_command or "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes"
    # GIT_CONFIG_PARAMETERS would carry a parent's ``git -c``; ours are the only ones
    env.update({"GIT_SSH_COMMAND": ssh, "GIT_CONFIG_PARAMETERS": ""})
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


class GitPythonClient:
    """Fetches with the git CLI (through GitPython) and streams its progress.

    ``block_private`` (``SLIPWAY_BLOCK_PRIVATE_SOURCES``): refuse repository and submodule
    hosts that resolve to non-public addresses (see :mod:`app.sources.addresses`)."""

    def __init__(self, *, block_private: bool = False) -> None:
        self._git = git.Git()
        self._block_private = block_private

    def clone(
        self, spec: GitSourceSpec, dest: Path, *, log: LogFn, cancel: CancelToken
    ) -> FetchResult:
        """Check out ``spec`` in ``dest`` (absent or empty) and report the commit checked out."""
        target = CloneTarget.from_spec(spec)
        mask = Masker([*target.secrets(), spec.ssh_key])
        cancel.check()
        existed = _check_destination(dest)
        pinned = self._checked_host(target)
        log(f"Cloning {target.describe}", stream=LogStream.SYSTEM)
        try:
            with SshSession(key=spec.ssh_key, known_hosts=spec.known_hosts) as ssh:
                env = clone_env(target, ssh_command=ssh.command(), extra=pinned)
                job = _Job(
                    self._git, target, dest.absolute(), env, log, mask, cancel, self._block_private
                )
                sha = job.fetch()
                if spec.submodules:
                    job.update_submodules()
                recorded = ssh.recorded()
        except BaseException:
            _discard(dest, existed=existed)
            raise
        if recorded:
            log("Recorded the server's SSH host key (trust on first use)", stream=LogStream.SYSTEM)
        return _checked_out(dest, sha, log=log, mask=mask, known_hosts=recorded)

    def _checked_host(self, target: CloneTarget) -> list[tuple[str, str]]:
        """With blocking on: the repository host's public addresses, pinned; else nothing."""
        found = endpoint(target.url) if self._block_private else None
        if found is None:
            return []
        return pin_config(found, resolve_public(found))


@dataclass(frozen=True, slots=True)
class _Failed:
    tail: tuple[str, ...]
    code: int

    @property
    def text(self) -> str:
        return "\n".join(self.tail)

    @property
    def host_key_refused(self) -> bool:
        return host_key_problem(self.text, where="") is not None


@dataclass(frozen=True, slots=True)
class _Job:
    """The git processes of one fetch, sharing its environment, log, masker and cancel token."""

    git: git.Git
    target: CloneTarget
    dest: Path
    env: dict[str, str]
    log: LogFn
    mask: Masker
    cancel: CancelToken
    block_private: bool = False

    def fetch(self) -> str:
        """Fetch and check out what the target names; return the commit checked out."""
        self.run(init_command(self.dest))
        self.run(remote_command(self.dest, self.target.url))
        sha = self.target.commit_sha
        if sha is None:
            self.run(fetch_command(self.dest, self.target.ref, depth=1))
            found = self.resolve("FETCH_HEAD")
            assert found is not None, "a successful fetch leaves FETCH_HEAD"
        else:
            found = self.fetch_commit(sha)
        self.run(checkout_command(self.dest, found))
        return found

    def fetch_commit(self, sha: str) -> str:
        """The commit itself if the server sends it, else found on the branch or tag."""
        if len(sha) in (40, 64):  # only a full id can be asked for
            failed = self.attempt(fetch_command(self.dest, sha, depth=1))
            if failed is None:
                found = self.resolve(sha)
                if found is not None:
                    return found
            else:
                error = self.error(failed)
                if isinstance(error, SourceNetworkError) or failed.host_key_refused:
                    raise error
                self.log(
                    f"The server did not send commit {sha} by itself ({_summarise(failed)}); "
                    f"looking for it in {self.target.ref_name}",
                    stream=LogStream.SYSTEM,
                )
        return self.find_on_ref(sha)

    def find_on_ref(self, sha: str) -> str:
        self.run(fetch_command(self.dest, self.target.ref, depth=FALLBACK_DEPTH))
        found = self.resolve(sha)
        if found is None and (self.dest / ".git" / "shallow").exists():
            self.log(
                f"{sha} is not among the last {FALLBACK_DEPTH} commits; fetching all history",
                stream=LogStream.SYSTEM,
            )
            self.run(fetch_command(self.dest, self.target.ref, depth=None))
            found = self.resolve(sha)
        if found is None:
            raise SourceError(
                f"commit {sha} not found in {self.target.url}: the server would not send it "
                f"and it is not in the history of {self.target.ref_name}"
            )
        return found

    def update_submodules(self) -> None:
        """Check out the submodules the repository names, if their URLs are allowed."""
        urls = self.submodule_urls()
        if not urls:
            return
        self.log(f"Updating submodules: {', '.join(urls)}", stream=LogStream.SYSTEM)
        self.run(submodule_command(self.dest), action="submodule update")

    def submodule_urls(self) -> list[str]:
        command = ["git", "-C", str(self.dest), "config", "--file", ".gitmodules",
                   "--get-regexp", r"^submodule\..*\.url$"]  # fmt: skip
        status, out, _ = self.git.execute(command, with_extended_output=True, with_exceptions=False)
        urls = []
        for line in str(out).splitlines() if status == 0 else []:
            name, _, url = line.partition(" ")
            try:
                urls.append(validate_submodule_url(url, parent=self.target.url))
            except BadInput as exc:  # the repository's content, not the user's input
                raise SourceError(f"refusing {name.removesuffix('.url')}: {exc}") from exc
            if self.block_private:
                self.check_submodule_host(name.removesuffix(".url"), url)
        return urls

    def check_submodule_host(self, name: str, url: str) -> None:
        """A submodule may not reach a non-public host either (blocking on)."""
        if url.startswith(("./", "../")):
            if relative_escapes(url, parent=self.target.url):
                raise SourceError(f"refusing {name}: its relative URL leaves the repository's host")
            return
        found = endpoint(url)
        if found is not None:
            resolve_public(found, "submodule")

    def resolve(self, rev: str) -> str | None:
        """The full id of commit ``rev`` in the checkout, or None if it is not there."""
        command = ["git", "-C", str(self.dest), "rev-parse", "--verify", "--quiet",
                   "--end-of-options", f"{rev}^{{commit}}"]  # fmt: skip
        status, out, _ = self.git.execute(command, with_extended_output=True, with_exceptions=False)
        return str(out).strip() if status == 0 and out else None

    def run(self, command: list[str], *, action: str = "clone") -> None:
        failed = self.attempt(command)
        if failed is not None:
            raise self.error(failed, action)

    def error(self, failed: _Failed, action: str = "clone") -> SourceError:
        prefix = f"git {action} of {self.target.describe} failed: "
        problem = host_key_problem(failed.text, where=self.target.url)
        if problem is not None:
            return SourceError(prefix + problem)
        summary = _summarise(failed)
        if _MISSING_REF.search(summary):
            summary = f"{self.target.ref_name} not found ({summary})"
        elif _CONNECT.search(failed.text) and "Permission denied" not in failed.text:
            summary = UNREACHABLE
        kind = SourceNetworkError if _NETWORK.search(failed.text) else SourceError
        return kind(prefix + self.mask(summary))

    def attempt(self, command: list[str]) -> _Failed | None:
        """Run one git command, streaming its stderr; None on success."""
        self.cancel.check()
        try:
            process = self.git.execute(
                command, as_process=True, with_stdout=False, env=self.env, start_new_session=True
            )
        except (OSError, git.GitCommandError) as exc:
            raise SourceError(f"could not start git: {self.mask(str(exc))}") from exc
        proc = process.proc
        if proc is None:
            raise SourceError("could not start git: no process")
        try:
            with killed_on_cancel(proc, self.cancel):  # git forks remote-https, ssh, index-pack
                tail = _stream_progress(proc.stderr, log=self.log, mask=self.mask)
                code = proc.wait()
        finally:
            if proc.stderr is not None:
                proc.stderr.close()
        self.cancel.check()
        return None if code == 0 else _Failed(tuple(tail), code)


def _segments(stream: IO[bytes]) -> Iterator[tuple[str, bool]]:
    """Yield (text, is_complete_line) as git writes; ``\\r`` ends an in-place progress update."""
    buffer = b""
    while chunk := os.read(stream.fileno(), 65536):
        buffer += chunk
        end = 0
        for match in _SEGMENT.finditer(buffer):
            if match.end() == len(buffer) and buffer.endswith(b"\r"):
                break  # perhaps the first half of \r\n: wait for the next read
            text = match.group().rstrip(b"\r\n")
            yield text.decode("utf-8", "replace"), match.group().endswith(b"\n")
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


def _summarise(failed: _Failed) -> str:
    """git's own reason: its fatal/error lines, else its last lines."""
    tail = failed.tail
    reasons = [line for line in tail if _SSH_REASON.search(line)]
    reasons += [_ERROR_PREFIX.sub("", line) for line in tail if _ERROR_PREFIX.match(line)]
    chosen = reasons or [line for line in tail if not line.startswith("Cloning into")][-3:]
    summary = "; ".join(chosen) or f"git exited with code {failed.code}"
    if "terminal prompts disabled" in summary:
        return f"the repository asked for credentials or rejected them ({summary})"
    return summary


def _checked_out(
    dest: Path, sha: str, *, log: LogFn, mask: Masker, known_hosts: str | None
) -> FetchResult:
    try:
        with git.Repo(dest) as repo:
            commit = repo.head.commit
            head, message = commit.hexsha, mask(str(commit.summary))
    except (git.GitError, ValueError, OSError) as exc:
        raise SourceError(f"fetched into {dest} but cannot read HEAD: {exc}") from exc
    if head != sha:
        raise SourceError(f"checked out {head} in {dest}, expected {sha}")
    log(f"Checked out {sha} {message}", stream=LogStream.SYSTEM)
    return FetchResult(path=dest, commit_sha=sha, commit_message=message, known_hosts=known_hosts)


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
