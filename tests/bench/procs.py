"""Processes of the fan-out benchmarks: spawning, stopping, and reading their CPU and memory
from /proc; the machine's busy time; the raw XREAD baseline; an optional py-spy recording."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from app.logs.bus.redis import FIELD, STREAM_PREFIX
from app.logs.writer import logs_topic

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    """In the child before exec: as many descriptors as allowed (1,000 sockets + files)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_nofile
        )


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"slipway serve exited: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"slipway serve never answered: {log.read_text()}"
        time.sleep(0.1)


@dataclass
class ProcSample:
    cpu_s: float
    rss_mb: float
    hwm_mb: float


def proc_sample(pid: int) -> ProcSample:
    """utime+stime from /proc/PID/stat, VmRSS and VmHWM from /proc/PID/status."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)
    mem = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            mem[name] = int(value.split()[0]) / 1024
    return ProcSample(cpu, mem["VmRSS"], mem["VmHWM"])


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class RssSampler(threading.Thread):
    """The server's VmRSS every 0.2 s while the run lasts."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.peak = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            self.peak = max(self.peak, proc_sample(self.pid).rss_mb)


class RawStreamReader(threading.Thread):
    """The baseline: XREAD of the deployment's stream, latency of every line written."""

    def __init__(self, url: str, deployment_id: str) -> None:
        super().__init__(daemon=True, name="raw-xread")
        self.redis = redis.Redis.from_url(url)
        self.key = STREAM_PREFIX + logs_topic(deployment_id)
        entries = self.redis.xrevrange(self.key, "+", "-", count=1)
        self.last: Any = entries[0][0] if entries else "0-0"
        self.latencies: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            reply: Any = self.redis.xread({self.key: self.last}, count=1000, block=200)
            now = time.time()
            for _, entries in reply or []:
                self.last = entries[-1][0]
                for _, fields in entries:
                    body = json.loads(fields[FIELD])
                    for line in body.get("lines", ()):
                        message: str = line["message"]
                        if message.startswith("t="):
                            self.latencies.append(now - float(message[2 : message.index(" ")]))

    def stop(self) -> list[float]:
        self.halt.set()
        self.join(timeout=10)
        self.redis.close()
        return self.latencies


class PySpy:
    """``py-spy record`` of the server for the run, when SLIPWAY_BENCH_PYSPY names a file."""

    def __init__(self, pid: int, seconds: float) -> None:
        self.out = os.environ.get("SLIPWAY_BENCH_PYSPY")
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.proc: subprocess.Popen[bytes] | None = None
        if self.out and Path(exe).exists():
            cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds))]
            cmd += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", self.out]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self) -> str:
        if self.proc is None:
            return "" if not self.out else "py-spy not found: pip install py-spy"
        _, err = self.proc.communicate(timeout=120)
        return f"py-spy profile in {self.out} (exit {self.proc.returncode}) {err.decode()[-200:]}"
