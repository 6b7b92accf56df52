"""A git repository whose commits are versions of one tiny web app, for rollback tests.

Each version is busybox ``httpd`` on 8080 serving ``/`` as ``version N`` and a CGI health
check at ``/cgi-bin/health`` that answers the HTTP status the version was given (200, or
500 for a broken one). :meth:`VersionedRepo.commit` pushes a new version to the bare
repository that applications clone from.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

HEALTH_PATH = "/cgi-bin/health"
_GIT = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
_DOCKERFILE = (
    "FROM busybox:1.36\nCOPY www /www\nEXPOSE 8080\n"
    # a shell that exits on SIGTERM: httpd as PID 1 ignores it (10 s per stop)
    'CMD ["sh","-c","trap \'exit 0\' TERM; httpd -f -v -p 8080 -h /www & wait"]\n'
)
_REASONS = {200: "OK", 500: "Internal Server Error"}


class VersionedRepo:
    def __init__(self, root: Path) -> None:
        self.work = root / "versions-work"
        self.bare = root / "versions.git"
        self.work.mkdir(parents=True)
        self._git("init", "-q", "-b", "main", str(self.work))
        self._git("init", "-q", "--bare", "-b", "main", str(self.bare))
        self._git("-C", str(self.work), "remote", "add", "origin", str(self.bare))

    def _git(self, *args: str) -> str:
        done = subprocess.run([*_GIT, *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, content: str, *, health: int = 200) -> str:
        """Make ``/`` answer ``content`` and the health check ``health``; returns the sha."""
        www = self.work / "www"
        (www / "cgi-bin").mkdir(parents=True, exist_ok=True)
        (self.work / "Dockerfile").write_text(_DOCKERFILE)
        (www / "index.html").write_text(f"{content}\n")
        script = www / "cgi-bin" / "health"
        script.write_text(
            "#!/bin/sh\n"
            f'printf "Status: {health} {_REASONS.get(health, "Status")}\\r\\n'
            f'Content-Type: text/plain\\r\\n\\r\\n{content} health {health}\\n"\n'
        )
        script.chmod(0o755)
        self._git("-C", str(self.work), "add", "-A")
        self._git("-C", str(self.work), "commit", "-q", "-m", content)
        self._git("-C", str(self.work), "push", "-q", "origin", "main")
        return self._git("-C", str(self.work), "rev-parse", "HEAD")
