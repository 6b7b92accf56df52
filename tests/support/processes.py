"""Slipway processes for fault and concurrency tests: `slipway serve`, fake workers, and a
redis-server of the test's own (so that it may be stopped and restarted)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SLIPWAY = str(Path(sys.executable).with_name("slipway"))


def slipway_env(
    *, data_dir: Path, database_url: str, redis_url: str, **settings: str
) -> dict[str, str]:
    """The environment of a distributed-mode process: ``settings`` as ``SLIPWAY_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update(
        SLIPWAY_DATA_DIR=str(data_dir),
        SLIPWAY_DATABASE_URL=database_url,
        SLIPWAY_REDIS_URL=redis_url,
        **{f"SLIPWAY_{name.upper()}": value for name, value in settings.items()},
    )
    return env


class Proc:
    """A child process whose output goes to ``log``; stopped only through its own pid."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code (None if killed)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            self.popen.send_signal(signal.SIGCONT)  # should a test have frozen it
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def kill(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_worker(
    env: dict[str, str], log: Path, *, lines: int = 3, step_seconds: float = 0
) -> Proc:
    """A `slipway worker` with fake adapters (:mod:`tests.support.chatty_worker`)."""
    extra = {"SLIPWAY_FAKE_BUILD_LINES": str(lines), "SLIPWAY_FAKE_STEP_SECONDS": str(step_seconds)}
    return Proc([sys.executable, "-m", "tests.support.chatty_worker"], {**env, **extra}, log)


def start_serve(env: dict[str, str], log: Path, *, port: int, wait: bool = True) -> Proc:
    """`slipway serve` on 127.0.0.1:``port`` (once /healthz answers, with ``wait``)."""
    proc = Proc([SLIPWAY, "serve", "--host", "127.0.0.1", "--port", str(port)], env, log)
    if wait:
        wait_healthy(proc, port)
    return proc


def wait_healthy(proc: Proc, port: int, timeout: float = 60) -> None:
    """Until `slipway serve` answers /healthz; fails with its output if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.alive(), f"slipway serve exited:\n{proc.tail()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"slipway serve did not answer:\n{proc.tail()}"
        time.sleep(0.1)


def create_api_key(env: dict[str, str], *, scope: str = "ADMIN") -> str:
    """`slipway api-key create`: the key is the last line it prints."""
    out = subprocess.run(
        [SLIPWAY, "api-key", "create", "--name", "t", "--scope", scope],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


class RedisServer:
    """A redis-server without persistence on ``port``, in ``workdir``."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> None:
        self.starts += 1
        argv = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        with (self.workdir / f"redis-{self.starts}.log").open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: as a crash or a lost host, nothing is written on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def _answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
