"""Real git remotes for tests: repositories with history, smart HTTP behind Basic auth, an sshd.

* :func:`history_repo` makes a bare repository with two commits on ``main`` and an
  annotated tag on the first; :func:`submodule_repos` a parent whose submodule is a
  sibling repository (``../lib.git``).
* :func:`serve_git` serves a directory of bare repositories with ``git http-backend``
  on 127.0.0.1, answering 401 unless the request carries the expected user and token.
* :func:`run_sshd` starts ``/usr/sbin/sshd`` on a free 127.0.0.1 port with its own host
  key, letting in the given public keys; it is stopped by its pid when the block ends.
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

SSHD = Path("/usr/sbin/sshd")
HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")
_GIT = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def _git(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [*_GIT, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@dataclass(frozen=True)
class Remote:
    """A bare repository and the commits it holds, oldest first."""

    bare: Path
    shas: list[str]
    tag: str | None = None
    tag_sha: str | None = None

    @property
    def head(self) -> str:
        return self.shas[-1]


def history_repo(root: Path, name: str = "app") -> Remote:
    """``<root>/<name>.git``: ``main`` with commits "first" then "second", tag v1 on "first"."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    _git("init", "-q", "-b", "main", work)
    shas = []
    for number, title in enumerate(("first", "second"), 1):
        (work / "version.txt").write_text(f"{number}\n")
        (work / "Dockerfile").write_text("FROM busybox:1.36\n")
        _git("-C", work, "add", "-A")
        _git("-C", work, "commit", "-q", "-m", title)
        shas.append(_git("-C", work, "rev-parse", "HEAD"))
    _git("-C", work, "tag", "-a", "v1", "-m", "release one", shas[0])
    bare = root / f"{name}.git"
    _git("clone", "-q", "--bare", work, bare)
    return Remote(bare=bare, shas=shas, tag="v1", tag_sha=shas[0])


def submodule_repos(root: Path) -> tuple[Remote, Remote]:
    """``<root>/parent.git`` whose submodule ``lib`` is ``../lib.git`` (both served together)."""
    lib = history_repo(root, "lib")
    work = root / "parent-work"
    work.mkdir(parents=True)
    _git("init", "-q", "-b", "main", work)
    (work / "Dockerfile").write_text("FROM busybox:1.36\n")
    # the relative URL resolves against the parent's origin when cloned
    _git("-C", work, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
         str(lib.bare), "lib")  # fmt: skip
    _git("-C", work, "config", "-f", ".gitmodules", "submodule.lib.url", "../lib.git")
    _git("-C", work, "add", "-A")
    _git("-C", work, "commit", "-q", "-m", "with lib")
    bare = root / "parent.git"
    _git("clone", "-q", "--bare", work, bare)
    return Remote(bare=bare, shas=[_git("-C", bare, "rev-parse", "HEAD")]), lib


def set_submodule_url(remote: Remote, url: str) -> str:
    """Commit a new ``.gitmodules`` URL for ``lib`` on the parent; return the new head."""
    work = remote.bare.parent / f"edit-{time.monotonic_ns()}"
    _git("clone", "-q", remote.bare, work)
    _git("-C", work, "config", "-f", ".gitmodules", "submodule.lib.url", url)
    _git("-C", work, "commit", "-q", "-am", "point lib elsewhere")
    _git("-C", work, "push", "-q", "origin", "main")
    return _git("-C", work, "rev-parse", "HEAD")


# --- smart HTTP -------------------------------------------------------------


class GitHttpServer(ThreadingHTTPServer):
    """``git http-backend`` for every bare repository under ``root``, behind Basic auth."""

    daemon_threads = True

    def __init__(self, root: Path, *, username: str, password: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.username = username
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.protocol_v2 = True  # False: drop Git-Protocol, so the server speaks v0
        self.seen_users: list[str | None] = []
        self.stall = threading.Event()  # set: requests hang until ``release`` is set
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, remote: Remote | Path) -> str:
        bare = remote.bare if isinstance(remote, Remote) else remote
        return f"{self.base_url}/{bare.relative_to(self.root)}"


class _Handler(BaseHTTPRequestHandler):
    server: GitHttpServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def _handle(self) -> None:
        auth = self.headers.get("Authorization")
        self.server.seen_users.append(_user_of(auth))
        if self.server.stall.is_set():
            self.server.release.wait(60)
        if auth != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._relay(self._backend(self._body()))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b""
        while size := int(self.rfile.readline().strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body

    def _backend(self, body: bytes) -> bytes:
        path, _, query = self.path.partition("?")
        protocol = self.headers.get("Git-Protocol", "") if self.server.protocol_v2 else ""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": protocol,
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        result = subprocess.run(
            [str(HTTP_BACKEND)], input=body, env=env, capture_output=True, check=False
        )
        return result.stdout

    def _relay(self, output: bytes) -> None:
        head, _, payload = output.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _user_of(auth: str | None) -> str | None:
    if not auth or not auth.startswith("Basic "):
        return None
    return base64.b64decode(auth[6:]).decode(errors="replace").partition(":")[0]


@contextmanager
def serve_git(root: Path, *, username: str, password: str) -> Iterator[GitHttpServer]:
    """Serve the bare repositories under ``root`` over HTTP until the block ends."""
    server = GitHttpServer(root, username=username, password=password)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- ssh --------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str


def make_key(directory: Path, name: str = "client") -> KeyPair:
    """A fresh unencrypted ed25519 key pair."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return KeyPair(private=path.read_text(), public=(directory / f"{name}.pub").read_text())


@dataclass
class Sshd:
    port: int
    host_key: str  # "ssh-ed25519 AAAA..." of the server
    user: str = field(default_factory=getpass.getuser)

    @property
    def known_hosts(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key}\n"

    def url(self, remote: Remote) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{remote.bare}"


def sshd_available() -> bool:
    return (
        SSHD.is_file()
        and shutil.which("ssh") is not None
        and shutil.which("ssh-keygen") is not None
    )


@contextmanager
def run_sshd(directory: Path, authorized: list[str]) -> Iterator[Sshd]:
    """An sshd of our own on 127.0.0.1 letting in ``authorized`` public keys."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(directory / "host_ed25519")], check=True)  # fmt: skip
    (directory / "authorized_keys").write_text("".join(authorized))
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nPubkeyAuthentication yes\n"
        "LogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:  # privilege separation wants this; the package's service makes it
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (directory / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        _wait_listening(port, proc, directory / "sshd.log")
        public = (directory / "host_ed25519.pub").read_text().split()
        yield Sshd(port=port, host_key=f"{public[0]} {public[1]}")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text()[-2000:]}")
