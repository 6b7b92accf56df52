"""The baseline of the deploy benchmark: the same deployment done by hand with git and docker."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
# The classic builder, as Slipway's Dockerfile builder uses through the Engine API.
DOCKER_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}
# static-ok's httpd runs as PID 1 and ignores SIGTERM, so every stop-first update would
# wait out Docker's 10 s grace period; both paths run it under this command instead.
HTTPD = ("sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait")
GIT_CLONE = ("git", "clone", "-q", "--depth", "1", "--branch", "main")


def run(*args: str, timeout: float = 300) -> str:
    """Run a command (list args); its stdout, or an AssertionError with its stderr."""
    res = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=DOCKER_ENV, check=False
    )
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {res.returncode}: {res.stderr[-2000:]}")
    return res.stdout


def docker(*args: str, timeout: float = 300) -> str:
    return run(DOCKER, *args, timeout=timeout)


def wait_http_ok(port: int, *, timeout: float = 120, interval: float = 0.05) -> None:
    """Poll ``http://127.0.0.1:port/`` every ``interval`` until it answers 200."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as res:
                if res.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout:g}s")
        time.sleep(interval)


@dataclass
class RawDeployer:
    """clone --depth 1, docker build, docker service create/update (waits to converge), GET."""

    repo: Path
    work: Path
    service: str
    port: int
    runs: int = 0

    @property
    def repository(self) -> str:
        return f"bench-raw/{self.service}"

    def deploy(self) -> dict[str, float]:
        """One deployment; the seconds each phase took."""
        self.runs += 1
        checkout = self.work / f"checkout-{self.runs}"
        tag = f"{self.repository}:{self.runs}"
        phases: dict[str, float] = {}
        mark = time.monotonic()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            phases[name] = now - mark
            mark = now

        run(*GIT_CLONE, f"file://{self.repo}", str(checkout))
        lap("clone")
        docker("build", "-t", tag, str(checkout))
        lap("build")
        if self.runs == 1:
            publish = f"mode=host,published={self.port},target=8080"
            create = ["service", "create", "--quiet", "--name", self.service]
            docker(*create, "--endpoint-mode", "dnsrr", "--publish", publish, tag, *HTTPD)
        else:
            docker("service", "update", "--quiet", "--image", tag, "--force", self.service)
        lap("service")
        wait_http_ok(self.port)
        lap("http")
        return phases
