"""Benchmark: 1,000 WebSocket followers of one deployment log on one distributed API server.

Distributed mode (PostgreSQL in a private schema, Redis broker and Redis Streams log bus).
``slipway serve`` runs as a subprocess of its own so its CPU and memory can be read from
/proc; a worker process (tests/bench/paced_flood.py: what ``slipway worker`` runs, with a
builder that writes on a schedule) writes 2,000 lines/s for 60 s. 1,000 subscribers of
``deploymentLogs`` (tests/bench/log_client.py, 4 processes x 250 connections) are all
subscribed before the first line is written; each line carries its write time, so every
receiver knows its write-to-receipt latency.

Baselines measured in the same run:

* the same pacing (for ``BASELINE_SECONDS``) followed by 1 subscriber, on the same server;
* raw ``XREAD`` of the deployment's Redis stream by a thread of this process, during both
  runs: the bus's own write-to-read latency, which the server cannot beat.

``SLIPWAY_BENCH_PYSPY=PATH`` also records the server with py-spy during the 1,000-follower
run (raw collapsed stacks in PATH; needs ``pip install py-spy``).

Figures are printed; only correctness is asserted (every follower gets every line once).
"""

from __future__ import annotations

import json
import os
import resource
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
    ProcSample,
    PySpy,
    RawStreamReader,
    RssSampler,
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

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

RATE = 2000  # lines per second
SECONDS = 60
LINES = RATE * SECONDS
SUBSCRIBERS = 1000
PROCESSES = 4
SAMPLE = 50  # each follower records the latency of every SAMPLE-th line
BASELINE_SECONDS = 10  # the 1-follower run: same pacing, shorter
CLIENT_GRACE = 30  # seconds after the writing a follower may take to reach the end
REDIS_DB = 6  # not 3 (tests/conftest.py) nor 5: other runs on this machine flush those
ROOT = Path(__file__).resolve().parents[2]
SLIPWAY = str(Path(sys.executable).with_name("slipway"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
STATUS = "query($id: ID!) { deployment(id: $id) { status errorMessage } }"


@pytest.fixture
def fanout_redis_url(redis_url: str) -> Iterator[str]:
    """A Redis database of this benchmark's own (a concurrent FLUSHDB would wipe the run)."""
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


# --- one run: a deployment, its followers, the figures ------------------------------------


@dataclass
class Run:
    name: str
    subscribers: int
    lines: int
    final: int = 0
    wall_s: float = 0.0
    writer: dict[str, float] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    server_before: ProcSample | None = None
    server_ready: ProcSample | None = None
    server_after: ProcSample | None = None
    server_peak_sampled: float = 0.0
    worker_cpu_s: float = 0.0
    machine_busy: float = 0.0  # cores busy on average during the run
    subscribe_s: float = 0.0
    profile: str = ""

    @property
    def latencies(self) -> list[float]:
        return [lat for r in self.reports for lat in r["latencies"]]

    @property
    def server_cpu_s(self) -> float:
        assert self.server_ready is not None and self.server_after is not None
        return self.server_after.cpu_s - self.server_ready.cpu_s


class Bench:
    def __init__(self, tmp: Path, env: dict[str, str], redis_url: str) -> None:
        self.tmp = tmp
        self.env = env
        self.redis_url = redis_url
        self.control = tmp / "control"
        self.control.mkdir()
        created = subprocess.run(
            [SLIPWAY, "api-key", "create", "--name", "bench", "--scope", "ADMIN"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = created.stdout.strip().splitlines()[-1]
        self.port = free_port()
        self.server_log = tmp / "serve.log"
        serve = [SLIPWAY, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.server = spawn(serve, env, self.server_log)
        worker_env = {**env, "SLIPWAY_BENCH_CONTROL": str(self.control)}
        worker = [sys.executable, "-m", "tests.bench.paced_flood"]
        self.worker = spawn(worker, worker_env, tmp / "worker.log")
        base = f"http://127.0.0.1:{self.port}"
        wait_healthy(base, self.server, self.server_log)
        self.client = Client(f"{base}/graphql", self.key)
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        app = GIT_APP(name="fanout")
        self.app_id = self.client(CREATE_APP, input=app)["createApplication"]["id"]

    def close(self) -> None:
        stop(self.worker)
        stop(self.server)
        self.client.http.close()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + 60
        while not (self.control / "started").exists():
            assert self.worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the build never started (see worker.log)"
            time.sleep(0.02)

    def _go(self, lines: int) -> None:
        tmp = self.control / "go.tmp"
        tmp.write_text(json.dumps({"lines": lines, "rate": RATE}))
        tmp.rename(self.control / "go")

    def _writer_report(self) -> dict[str, float]:
        done = self.control / "done.json"
        deadline = time.monotonic() + 30
        while not done.exists():
            assert time.monotonic() < deadline, "the writer never reported"
            time.sleep(0.05)
        report: dict[str, float] = json.loads(done.read_text())
        done.unlink()
        return report

    def _wait_finished(self, dep_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            dep: dict[str, Any] = self.client(STATUS, id=dep_id)["deployment"]
            if dep["status"] in TERMINAL:
                return dep
            assert time.monotonic() < deadline, f"deployment still {dep['status']}"
            time.sleep(0.2)

    def _clients(self, dep_id: str, subscribers: int, processes: int, sample: int) -> list[Any]:
        cmd = [sys.executable, "-m", "tests.bench.log_client", self.ws_url, self.key, dep_id]
        cmd += ["--subscribers", str(subscribers // processes), "--sample", str(sample)]
        cmd += ["--timeout", str(SECONDS + CLIENT_GRACE), "--ready-timeout", "90"]
        return [
            subprocess.Popen(
                cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile
            )
            for _ in range(processes)
        ]

    def run(self, name: str, subscribers: int, processes: int, seconds: int, sample: int) -> Run:
        run = Run(name, subscribers, RATE * seconds)
        dep = self.client(DEPLOY, id=self.app_id)["deployApplication"]
        self._wait_started()
        run.server_before = proc_sample(self.server.pid)
        subscribed = time.monotonic()
        procs = self._clients(dep["id"], subscribers, processes, sample)
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                assert line == "READY", f"a subscriber process did not get ready: {line[:500]!r}"
            run.subscribe_s = time.monotonic() - subscribed
            raw = RawStreamReader(self.redis_url, dep["id"])
            sampler = RssSampler(self.server.pid)
            worker0 = proc_sample(self.worker.pid).cpu_s
            busy0, total0 = machine_busy()
            run.server_ready = proc_sample(self.server.pid)
            spy = PySpy(self.server.pid, seconds + 5) if subscribers > 1 else None
            started = time.monotonic()
            raw.start()
            sampler.start()
            self._go(run.lines)
            for proc in procs:
                out, _ = proc.communicate(timeout=SECONDS + CLIENT_GRACE + 60)
                assert proc.returncode == 0, f"subscriber process exited with {proc.returncode}"
                result = json.loads(out.strip().splitlines()[-1])
                run.reports.extend(result["reports"])
                run.client_cpu.append(result["cpu_s"])
            run.wall_s = time.monotonic() - started
            run.server_after = proc_sample(self.server.pid)
            busy1, total1 = machine_busy()
            cores = os.cpu_count() or 1
            run.machine_busy = (busy1 - busy0) / max(1, total1 - total0) * cores
            run.worker_cpu_s = proc_sample(self.worker.pid).cpu_s - worker0
            sampler.halt.set()
            run.server_peak_sampled = sampler.peak
            run.raw = raw.stop()
            run.writer = self._writer_report()
            run.profile = spy.finish() if spy is not None else ""
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done = self._wait_finished(dep["id"])
        assert done["status"] == "DONE", done["errorMessage"]
        run.final = last_seq(Path(dep["logPath"]))
        return run


# --- the report ---------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return (
        f"p50={percentile(values, 50) * 1000:.1f}ms p99={percentile(values, 99) * 1000:.1f}ms "
        f"max={max(values, default=nan) * 1000:.1f}ms (n={len(values)})"
    )


def _print(main: Run, base: Run) -> None:
    assert main.server_ready and main.server_after and main.server_before
    assert base.server_ready and base.server_after
    writer = main.writer
    span = writer["last_write"] - writer["first_write"]
    reports = main.reports
    lost = [max(0, main.final - r["unique"]) for r in reports]
    dups = [r["count"] - r["unique"] for r in reports]
    delivered = sum(r["count"] for r in reports)
    last_receipt = max(r["last_receipt"] for r in reports)
    per_sub = [r["count"] / max(1e-9, r["last_receipt"] - writer["first_write"]) for r in reports]
    lat, base_lat = main.latencies, base.latencies
    frames = [r["frames"] for r in reports]
    per_frame = [r["count"] / max(1, r["frames"]) for r in reports]
    timeouts = sum(r["error"] == "timeout" for r in reports)
    ratio50 = percentile(lat, 50) / percentile(base_lat, 50)
    ratio99 = percentile(lat, 99) / percentile(base_lat, 99)
    ratio_raw = percentile(lat, 99) / percentile(main.raw, 99)
    cpu, wall = main.server_cpu_s, main.wall_s
    base_cpu = base.server_cpu_s
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(
        f"\nBENCH distributed_fanout: {main.lines:,} lines at {RATE:,}/s for {SECONDS}s, "
        f"{main.subscribers} subscribers in {PROCESSES} processes on one `slipway serve` "
        f"subprocess; worker process; PostgreSQL + Redis Streams bus; final seq {main.final}\n"
        f"  writer               {main.lines / span:,.0f} lines/s over {span:.2f}s "
        f"(max {writer['max_behind_s'] * 1000:.1f}ms behind schedule)\n"
        f"  subscribe            {main.subscribers} followers READY in {main.subscribe_s:.1f}s "
        f"(RLIMIT_NOFILE soft={soft} hard={hard}; children raised to the hard limit)\n"
        f"  latency write->recv  {_ms(lat)}  (every {SAMPLE}th line received per follower; "
        f"target p99 < 500ms)\n"
        f"  lost                 total={sum(lost)} max/sub={max(lost)}  "
        f"duplicated total={sum(dups)} max/sub={max(dups)} (target 0/0); "
        f"{timeouts} followers not at the end {CLIENT_GRACE}s after the last write\n"
        f"  delivered            {delivered / (last_receipt - writer['first_write']):,.0f} "
        f"lines/s in all ({delivered:,} lines); per follower median={median(per_sub):,.0f} "
        f"min={min(per_sub):,.0f} lines/s; last receipt {last_receipt - writer['last_write']:.2f}s "
        f"after the last write\n"
        f"  frames per follower  min={min(frames)} median={median(frames):.0f} max={max(frames)} "
        f"(lines per frame median {median(per_frame):.1f})\n"
        f"  server CPU           {cpu:.1f}s over {wall:.1f}s = {cpu / wall * 100:.0f}% of one "
        f"core (1 follower: {base_cpu:.1f}s over {base.wall_s:.1f}s = "
        f"{base_cpu / base.wall_s * 100:.0f}%)\n"
        f"  server RSS           start={main.server_before.rss_mb:.0f}MB "
        f"subscribed={main.server_ready.rss_mb:.0f}MB "
        f"peak={main.server_peak_sampled:.0f}MB (VmHWM {main.server_after.hwm_mb:.0f}MB) "
        f"end={main.server_after.rss_mb:.0f}MB\n"
        f"  other CPU            worker {main.worker_cpu_s:.1f}s, clients "
        f"{' '.join(f'{c:.1f}s' for c in main.client_cpu)}; machine "
        f"{main.machine_busy:.2f} of {os.cpu_count()} cores busy on average (all processes)\n"
        f"  baseline 1 follower  {_ms(base_lat)} ({base.lines:,} lines, same pacing)\n"
        f"  baseline raw XREAD   {_ms(main.raw)} during this run; "
        f"{_ms(base.raw)} during the 1-follower run\n"
        f"  ratio                p50 {ratio50:.1f}x, p99 {ratio99:.1f}x the 1-follower run; "
        f"p99 {ratio_raw:.1f}x raw XREAD in the same run"
        + (f"\n  {main.profile}" if main.profile else "")
    )


def _check(run: Run) -> None:
    errors = [r["error"] for r in run.reports if r["error"]]
    assert not errors, f"{run.name}: {len(errors)} subscribers failed, e.g. {errors[0]}"
    assert len(run.reports) == run.subscribers
    assert run.final > run.lines
    for n, rep in enumerate(run.reports):
        assert rep["completed"], f"{run.name} subscriber {n}: the stream did not complete"
        assert rep["in_order"], f"{run.name} subscriber {n}: seqs out of order"
        lost, dups = run.final - rep["unique"], rep["count"] - rep["unique"]
        assert (lost, dups) == (0, 0), f"{run.name} subscriber {n}: lost {lost}, duplicated {dups}"
        assert rep["count"] == rep["max_seq"] == run.final, f"{run.name} subscriber {n}: {rep}"


def test_1000_followers_of_a_paced_log(
    tmp_path: Path, pg_schema_url: str, fanout_redis_url: str
) -> None:
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_DATABASE_URL": pg_schema_url,
        "SLIPWAY_REDIS_URL": fanout_redis_url,
        # One address and one key for every follower: the WebSocket caps raised to fit them.
        "SLIPWAY_WS_MAX_PENDING_PER_ADDRESS": str(SUBSCRIBERS),
        "SLIPWAY_WS_MAX_CONNECTIONS_PER_KEY": str(SUBSCRIBERS),
        "SLIPWAY_WS_MAX_SUBSCRIPTIONS_PER_KEY": str(SUBSCRIBERS),
        "SLIPWAY_WS_MAX_CONNECTIONS": str(2 * SUBSCRIBERS),
        "SLIPWAY_WS_MAX_SUBSCRIPTIONS": str(2 * SUBSCRIBERS),
    }
    bench = Bench(tmp_path, env, fanout_redis_url)
    try:
        base = bench.run("1 follower", 1, 1, BASELINE_SECONDS, sample=1)
        main = bench.run(f"{SUBSCRIBERS} followers", SUBSCRIBERS, PROCESSES, SECONDS, SAMPLE)
    finally:
        bench.close()
    _print(main, base)
    _check(base)
    _check(main)
