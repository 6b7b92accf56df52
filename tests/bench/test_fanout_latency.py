"""Benchmark: write-to-receipt latency of deploymentLogs followers at a stated, paced rate.

Unlike tests/bench/test_distributed_fanout.py and tests/bench/test_log_streaming.py (which
drive the server to saturation and so give throughput figures), the writer here is paced
well below what the server can deliver, so the figures say how late a line reaches its
followers, and how much of the server's CPU a line costs:

* ``embedded-ws`` / ``embedded-sse``: embedded mode (SQLite, in-process bus and worker),
  the writer at 5,000 lines/s, 100 followers; target p99 < 250 ms;
* ``distributed-ws`` / ``distributed-sse``: distributed mode (PostgreSQL, Redis broker and
  log bus; the writer in a worker process), 500 lines/s, 1,000 followers; target p99 <
  500 ms, none lost, none duplicated;
* for all four: the server process's own CPU (utime+stime from /proc) per million lines
  delivered, target <= 0.5 s. In embedded mode it includes the writer (the worker runs in
  the server process); the 1-follower baseline shows that share.

The server is ``slipway serve`` (distributed, with tests/bench/paced_flood.py as its worker)
or tests/bench/paced_flood.py ``serve`` (embedded: what ``slipway serve`` runs, with the
paced builder), a subprocess of its own. Followers are tests/bench/fast_client.py
processes (hand-parsed WebSocket or SSE on uvloop, orjson), cheap enough that the server is
what is measured; their CPU is printed beside the server's. Each scenario first runs one
follower for ``BASELINE_SECONDS`` (the ratio's baseline, same server, same pacing), then
``SLIPWAY_BENCH_REPEATS`` (default 3) runs of ``SLIPWAY_BENCH_SECONDS`` (default 30) and
prints each run and the medians. The machine's load average is printed: on a shared
machine the figures are noisy. ``SLIPWAY_BENCH_PYSPY=PATH`` records the server with py-spy
during the first full run. The server takes ``SLIPWAY_*`` settings from the environment
(the header names SLIPWAY_LOG_WAKEUPS_PER_SECOND). Only correctness is asserted (every
follower gets every line exactly once, in order); the targets are printed with whether
they were met.

    scripts/bench tests/bench/test_fanout_latency.py               # all four
    scripts/bench tests/bench/test_fanout_latency.py -k embedded-ws
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import nan
from pathlib import Path
from typing import Any

import pytest
import redis

from app.logs.files import last_seq
from tests.bench.procs import (
    ROOT,
    ProcSample,
    PySpy,
    machine_busy,
    proc_sample,
    raise_nofile,
    spawn,
    stop,
    wait_healthy,
)
from tests.bench.stats import median, percentile
from tests.e2e.conftest import GIT_APP, TERMINAL
from tests.e2e.harness import Client, free_port
from tests.e2e.queries import CREATE_APP, DEPLOY

SECONDS = int(os.environ.get("SLIPWAY_BENCH_SECONDS") or 30)
REPEATS = int(os.environ.get("SLIPWAY_BENCH_REPEATS") or 3)
BASELINE_SECONDS = 10
SAMPLE = 50  # each follower records the latency of every SAMPLE-th line it receives
CLIENT_GRACE = 60  # seconds after the writing a follower may take to reach the end
CPU_TARGET = 0.5  # server CPU seconds per million lines delivered
REDIS_DB = 7  # a database of its own: other runs on this machine flush 3, 5 and 6
SLIPWAY = str(Path(sys.executable).with_name("slipway"))
STATUS = "query($id: ID!) { deployment(id: $id) { status errorMessage } }"


@dataclass(frozen=True)
class Scenario:
    distributed: bool
    sse: bool
    rate: int  # lines per second
    followers: int
    processes: int  # client processes the followers are spread over
    p99_target: float  # seconds


SCENARIOS = {
    "embedded-ws": Scenario(False, False, 5000, 100, 1, 0.250),
    "embedded-sse": Scenario(False, True, 5000, 100, 1, 0.250),
    "distributed-ws": Scenario(True, False, 500, 1000, 2, 0.500),
    "distributed-sse": Scenario(True, True, 500, 1000, 2, 0.500),
}


@dataclass
class Run:
    followers: int
    lines: int
    final: int = 0
    wall_s: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    busy_cores: float = 0.0
    server_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_after: ProcSample | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    writer: dict[str, float] = field(default_factory=dict)
    profile: str = ""

    @property
    def latencies(self) -> list[float]:
        return [lat for r in self.reports for lat in r["latencies"]]

    @property
    def delivered(self) -> int:
        return sum(r["count"] for r in self.reports)

    @property
    def lost(self) -> int:
        return sum(max(0, self.final - r["unique"]) for r in self.reports)

    @property
    def duplicated(self) -> int:
        return sum(r["count"] - r["unique"] for r in self.reports)

    @property
    def cpu_per_million(self) -> float:
        return self.server_cpu_s / max(1, self.delivered) * 1e6

    def p(self, pct: float) -> float:
        return percentile(self.latencies, pct)


@pytest.fixture
def own_redis_url(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


class Bench:
    """One server (and worker), the deployments it runs and the followers of each."""

    def __init__(self, tmp: Path, scenario: Scenario, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.scenario = scenario
        self.control = tmp / "control"
        self.control.mkdir()
        env = {**env, "SLIPWAY_BENCH_CONTROL": str(self.control), **_caps(scenario.followers)}
        cmd = [SLIPWAY, "api-key", "create", "--name", "bench", "--scope", "ADMIN"]
        made = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        self.key = made.stdout.strip().splitlines()[-1]
        port = free_port()
        self.server_log = tmp / "serve.log"
        self.worker: subprocess.Popen[bytes] | None = None
        if scenario.distributed:
            serve = [SLIPWAY, "serve", "--host", "127.0.0.1", "--port", str(port)]
            worker = [sys.executable, "-m", "tests.bench.paced_flood"]
            self.worker = spawn(worker, env, tmp / "worker.log")
        else:
            serve = [sys.executable, "-m", "tests.bench.paced_flood", "serve", str(port)]
        self.server = spawn(serve, env, self.server_log)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, self.server, self.server_log)
        self.url = f"{base}/graphql"
        self.client = Client(self.url, self.key)
        app = GIT_APP(name="latency")
        self.app_id = self.client(CREATE_APP, input=app)["createApplication"]["id"]

    def close(self) -> None:
        if self.worker is not None:
            stop(self.worker)
        stop(self.server)
        self.client.http.close()

    def _wait_file(self, name: str, timeout: float) -> Path:
        path = self.control / name
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self.server.poll() is None, "the server exited (see serve.log)"
            assert self.worker is None or self.worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, f"no {name} from the builder"
            time.sleep(0.02)
        return path

    def _wait_finished(self, dep_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            dep: dict[str, Any] = self.client(STATUS, id=dep_id)["deployment"]
            if dep["status"] in TERMINAL:
                return dep
            assert time.monotonic() < deadline, f"deployment still {dep['status']}"
            time.sleep(0.2)

    def _clients(self, dep_id: str, followers: int, seconds: int) -> list[subprocess.Popen[str]]:
        sc = self.scenario
        processes = min(sc.processes, followers)
        cmd = [sys.executable, "-m", "tests.bench.fast_client", self.url, self.key, dep_id]
        cmd += ["--subscribers", str(followers // processes), "--sample", str(SAMPLE)]
        cmd += ["--timeout", str(seconds + CLIENT_GRACE), "--ready-timeout", "90"]
        cmd += ["--sse"] if sc.sse else []
        return [
            subprocess.Popen(
                cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile
            )
            for _ in range(processes)
        ]

    def run(self, followers: int, seconds: int, *, profile: bool = False) -> Run:
        sc = self.scenario
        run = Run(followers, sc.rate * seconds)
        dep = self.client(DEPLOY, id=self.app_id)["deployApplication"]
        self._wait_file("started", 60)
        procs = self._clients(dep["id"], followers, seconds)
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                assert line == "READY", f"a follower process did not get ready: {line[:500]!r}"
            run.load = os.getloadavg()
            busy0, total0 = machine_busy()
            server0 = proc_sample(self.server.pid).cpu_s
            worker0 = proc_sample(self.worker.pid).cpu_s if self.worker else 0.0
            spy = PySpy(self.server.pid, seconds + 5) if profile else None
            started = time.monotonic()
            go = self.control / "go.tmp"
            go.write_text(json.dumps({"lines": run.lines, "rate": sc.rate}))
            go.rename(self.control / "go")
            for proc in procs:
                out, _ = proc.communicate(timeout=seconds + CLIENT_GRACE + 60)
                assert proc.returncode == 0, f"follower process exited with {proc.returncode}"
                result = json.loads(out.strip().splitlines()[-1])
                run.reports.extend(result["reports"])
                run.client_cpu_s += result["cpu_s"] - result["ready_cpu_s"]
            run.wall_s = time.monotonic() - started
            run.server_after = proc_sample(self.server.pid)
            run.server_cpu_s = run.server_after.cpu_s - server0
            if self.worker is not None:
                run.worker_cpu_s = proc_sample(self.worker.pid).cpu_s - worker0
            busy1, total1 = machine_busy()
            run.busy_cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
            done = self._wait_file("done.json", 30)
            run.writer = json.loads(done.read_text())
            done.unlink()
            run.profile = spy.finish() if spy is not None else ""
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        finished = self._wait_finished(dep["id"])
        assert finished["status"] == "DONE", finished["errorMessage"]
        run.final = last_seq(Path(dep["logPath"]))
        return run


def _caps(followers: int) -> dict[str, str]:
    """One address and one key for every follower: the connection caps raised to fit."""
    return {
        "SLIPWAY_WS_MAX_PENDING_PER_ADDRESS": str(followers),
        "SLIPWAY_WS_MAX_CONNECTIONS_PER_KEY": str(followers),
        "SLIPWAY_WS_MAX_SUBSCRIPTIONS_PER_KEY": str(followers),
        "SLIPWAY_WS_MAX_CONNECTIONS": str(2 * followers),
        "SLIPWAY_WS_MAX_SUBSCRIPTIONS": str(2 * followers),
    }


def _check(run: Run) -> None:
    errors = [r["error"] for r in run.reports if r["error"]]
    assert not errors, f"{len(errors)} followers failed, e.g. {errors[0]}"
    assert len(run.reports) == run.followers
    assert run.final > run.lines
    for n, rep in enumerate(run.reports):
        assert rep["completed"], f"follower {n}: the stream did not complete"
        assert rep["in_order"], f"follower {n}: seqs out of order"
        lost, dups = run.final - rep["unique"], rep["count"] - rep["unique"]
        assert (lost, dups) == (0, 0), f"follower {n}: lost {lost}, duplicated {dups}"
        assert rep["count"] == rep["max_seq"] == run.final, f"follower {n}: {rep}"


def _line(label: str, run: Run) -> str:
    frames = [r["frames"] for r in run.reports]
    per_frame = [r["count"] / max(1, r["frames"]) for r in run.reports]
    span = run.writer["last_write"] - run.writer["first_write"]
    worker = f" worker {run.worker_cpu_s:.1f}s," if run.worker_cpu_s else ""
    return (
        f"  {label:<10} p50={run.p(50) * 1000:6.1f}ms p99={run.p(99) * 1000:7.1f}ms "
        f"max={max(run.latencies, default=nan) * 1000:7.1f}ms  lost={run.lost} "
        f"dup={run.duplicated}  server {run.server_cpu_s:5.1f}s = "
        f"{run.cpu_per_million:.2f}s/M lines ({run.delivered / 1e6:.2f}M delivered, "
        f"writer {run.lines / span:,.0f}/s, {run.writer['max_behind_s'] * 1000:.0f}ms max "
        f"behind),{worker} clients {run.client_cpu_s:.1f}s over {run.wall_s:.1f}s; frames/follower "
        f"{median(frames):.0f} ({median(per_frame):.0f} lines each); load "
        f"{run.load[0]:.2f}, {run.busy_cores:.2f} cores busy"
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _report(name: str, sc: Scenario, base: Run, runs: list[Run]) -> None:
    p50 = median([r.p(50) for r in runs])
    p99 = median([r.p(99) for r in runs])
    cpu = median([r.cpu_per_million for r in runs])
    lost, dups = sum(r.lost for r in runs), sum(r.duplicated for r in runs)
    clients = median([r.client_cpu_s / r.wall_s for r in runs])
    body = "\n".join(_line(f"run {n + 1}", r) for n, r in enumerate(runs))
    print(
        f"\nBENCH fanout_latency[{name}]: {'distributed' if sc.distributed else 'embedded'} "
        f"mode, {'SSE' if sc.sse else 'WebSocket'}, writer paced at {sc.rate:,} lines/s for "
        f"{SECONDS}s, {sc.followers} followers in {sc.processes} client process(es), "
        f"{len(runs)} runs, SLIPWAY_LOG_WAKEUPS_PER_SECOND="
        f"{os.environ.get('SLIPWAY_LOG_WAKEUPS_PER_SECOND', 'default')}\n"
        f"{_line('1 follower', base)}\n{body}\n"
        f"  median     p50={p50 * 1000:.1f}ms p99={p99 * 1000:.1f}ms "
        f"(target p99 < {sc.p99_target * 1000:.0f}ms: {_verdict(p99 < sc.p99_target)}); "
        f"lost={lost} duplicated={dups} (target 0/0: {_verdict(lost == dups == 0)}); "
        f"server CPU {cpu:.2f}s per million lines delivered (target <= {CPU_TARGET}s: "
        f"{_verdict(cpu <= CPU_TARGET)}); clients used {clients:.2f} of a core\n"
        f"  ratio      p50 {p50 / base.p(50):.1f}x, p99 {p99 / base.p(99):.1f}x the 1-follower run"
        + "".join(f"\n  {r.profile}" for r in runs if r.profile)
    )


SERVICES = [pytest.mark.redis, pytest.mark.postgres]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=SERVICES if s.distributed else []) for n, s in SCENARIOS.items()]
)
def test_paced_fanout_latency(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    sc = SCENARIOS[name]
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(tmp_path / "data")}
    for var in ("SLIPWAY_REDIS_URL", "SLIPWAY_DATABASE_URL"):
        env.pop(var, None)
    if sc.distributed:
        env["SLIPWAY_DATABASE_URL"] = request.getfixturevalue("pg_schema_url")
        env["SLIPWAY_REDIS_URL"] = request.getfixturevalue("own_redis_url")
    bench = Bench(tmp_path, sc, env)
    try:
        base = bench.run(1, BASELINE_SECONDS)
        _check(base)
        runs = []
        for n in range(REPEATS):
            runs.append(bench.run(sc.followers, SECONDS, profile=n == 0))
            _check(runs[-1])
    finally:
        bench.close()
    _report(name, sc, base, runs)
