"""A private registry with basic auth, started by a test: Debian's ``docker-registry``.

It listens on a free 127.0.0.1 port (the Docker engine allows plain http on loopback)
and knows one user, whose bcrypt hash is in an htpasswd file. ``push_test_image`` tags
an image the test engine already has and pushes it with the user's credentials.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
from docker.errors import NotFound
from docker.utils import parse_repository_tag

BASE_IMAGE = "busybox:1.36"  # seeded into the test engine by scripts/services
REPOSITORY = "slipway-test/app"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class AuthRegistry:
    addr: str  # 127.0.0.1:PORT
    username: str
    password: str

    @property
    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "serveraddress": self.addr}

    def ref(self, tag: str = "1", repository: str = REPOSITORY) -> str:
        return f"{self.addr}/{repository}:{tag}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(root: Path, addr: str, htpasswd: Path, *, delete: bool = True) -> str:
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root}",
            "  delete:",
            f"    enabled: {'true' if delete else 'false'}",
            "http:",
            f"  addr: {addr}",
            "auth:",
            "  htpasswd:",
            "    realm: slipway-test",
            f"    path: {htpasswd}",
            "",
        ]
    )


def _answers_with_401(addr: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{addr}/v2/", timeout=1)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return False  # 200 without credentials: auth is not on


def registry_binary() -> str | None:
    return shutil.which("docker-registry")


@contextmanager
def auth_registry(
    workdir: Path, *, username: str = "deployer", delete: bool = True
) -> Iterator[AuthRegistry]:
    """Run a registry that requires ``username`` and a random password; stop it after.
    ``delete=False``: manifest deletes are disabled (the registry answers 405)."""
    binary = registry_binary()
    assert binary is not None, "check registry_binary() first"
    workdir.mkdir(parents=True, exist_ok=True)
    password = f"pw-{secrets.token_hex(12)}"
    htpasswd = workdir / "htpasswd"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{username}:{hashed}\n")
    addr = f"127.0.0.1:{_free_port()}"
    config = workdir / "config.yml"
    config.write_text(_config(workdir / "data", addr, htpasswd, delete=delete))
    with (workdir / "registry.log").open("ab") as out:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers_with_401(addr):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "registry.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"docker-registry did not come up on {addr}: {log}")
            time.sleep(0.05)
        yield AuthRegistry(addr=addr, username=username, password=password)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def push_test_image(
    docker_client: Any, registry: AuthRegistry, tag: str = "1", repository: str = REPOSITORY
) -> str:
    """Push :data:`BASE_IMAGE` as ``registry.ref(tag)``; return the digest it was pushed as."""
    ref = registry.ref(tag, repository)
    docker_client.images.get(BASE_IMAGE).tag(ref)
    digest = None
    for chunk in docker_client.api.push(
        ref, stream=True, decode=True, auth_config=registry.auth_config
    ):
        if "error" in chunk:
            raise RuntimeError(f"push of {ref} failed: {chunk['error']}")
        digest = (chunk.get("aux") or {}).get("Digest") or digest
    assert digest and digest.startswith("sha256:"), f"push of {ref} reported no digest"
    return str(digest)


def remove_local(docker_client: Any, ref: str) -> None:
    """Untag ``ref`` (and any digest reference of it) from the engine, so a pull is real."""
    repo, _ = parse_repository_tag(ref)
    for image in docker_client.images.list(name=repo):
        for name in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if name.startswith(f"{repo}:") or name.startswith(f"{repo}@"):
                try:
                    docker_client.images.remove(name)
                except NotFound:
                    pass
