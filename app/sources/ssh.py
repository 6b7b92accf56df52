"""Per-job ssh material for git: a private key file and a known_hosts file that no other job sees.

Each fetch gets a fresh ``mkdtemp`` directory (mode 0700) holding the key (0600) and its own
known_hosts, removed when the fetch ends however it ends. With pinned host keys ssh checks
strictly; without, it accepts the first key it sees and the caller records it (trust on
first use), so a later change of the server's key is caught.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

KEY_NAME = "id_key"
KNOWN_HOSTS_NAME = "known_hosts"
_HOST_KEY_FAILED = re.compile(r"Host key verification failed", re.IGNORECASE)
_HOST_KEY_CHANGED = re.compile(
    r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed", re.IGNORECASE
)


class SshSession:
    """Write the key and known_hosts on enter, build ``GIT_SSH_COMMAND``, remove all on exit."""

    def __init__(self, *, key: str | None, known_hosts: str | None) -> None:
        self._key = key
        self._pinned = known_hosts.strip() if known_hosts and known_hosts.strip() else None
        self._dir: Path | None = None

    def __enter__(self) -> SshSession:
        self._dir = Path(tempfile.mkdtemp(prefix="slipway-ssh-"))  # 0700, unique per call
        try:
            if self._key is not None:
                _write_private(self.key_path, _normalise(self._key))
            _write_private(self.known_hosts_path, self._pinned + "\n" if self._pinned else "")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def directory(self) -> Path:
        assert self._dir is not None, "use SshSession as a context manager"
        return self._dir

    @property
    def key_path(self) -> Path:
        return self.directory / KEY_NAME

    @property
    def known_hosts_path(self) -> Path:
        return self.directory / KNOWN_HOSTS_NAME

    @property
    def pinned(self) -> bool:
        return self._pinned is not None

    def command(self) -> str:
        """The ``GIT_SSH_COMMAND``: only our key, no user or system config, never a prompt."""
        args = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes"]
        if self._key is not None:
            args += ["-i", str(self.key_path), "-o", "IdentitiesOnly=yes"]
        args += [
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"StrictHostKeyChecking={'yes' if self.pinned else 'accept-new'}",
        ]  # fmt: skip
        return shlex.join(args)

    def recorded(self) -> str | None:
        """The host keys accepted on first use (None when they were pinned or none were seen)."""
        if self.pinned or self._dir is None:
            return None
        try:
            text = self.known_hosts_path.read_text()
        except OSError:
            return None
        return text if text.strip() else None


def host_key_problem(errors: str, *, where: str) -> str | None:
    """A plain explanation when ssh refused the server's host key, else None."""
    if not _HOST_KEY_FAILED.search(errors):
        return None
    if _HOST_KEY_CHANGED.search(errors):
        return (
            f"host key mismatch: the SSH host key of {where} is not the one pinned in "
            "knownHosts (the server's key changed, or someone is in between); "
            "update knownHosts only if you trust the new key"
        )
    return (
        f"host key mismatch: knownHosts pins no key that {where} presented "
        "(host key verification failed)"
    )


def _normalise(key: str) -> str:
    """ssh wants LF line ends and a final newline."""
    return key.replace("\r\n", "\n").strip() + "\n"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
