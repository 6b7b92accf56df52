"""Benchmark: enqueue-to-start latency in distributed mode (API server + a worker process).

The API server runs in-process on PostgreSQL (a private schema) and Redis; one worker
process (tests/support/fake_worker.py: what `slipway worker` runs, with fake adapters)
shares them. Deployments of one application are requested one after another, each once
the previous one has finished, so a slot is always free: ``startedAt - createdAt`` is
the time from the QUEUED row to the worker's claim. The baseline, measured in the same
run, is a trivial Dramatiq actor on the same Redis with a worker in this process: sent,
then executed, once back to back ("hot") and once after the same idle gap the worker saw
between deployments ("idle-matched"). Figures are printed; only correctness is asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from app.types import Scope
from tests.bench.stats import median, percentile
from tests.e2e.conftest import GIT_APP, TERMINAL
from tests.e2e.harness import Client, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.fake_worker import DEFAULT_SOURCE, fake_adapters

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

RUNS = 30
BASELINE_RUNS = 30
REDIS_DB = 5
ROOT = Path(__file__).resolve().parents[2]
TIMES = "query($id: ID!) { deployment(id: $id) { status errorMessage createdAt startedAt } }"


@pytest.fixture
def redis_db_url(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _deploy_and_wait(client: Client, app_id: str, timeout: float = 60) -> dict[str, Any]:
    """deployApplication, then poll every 10 ms until the deployment has ended."""
    dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    deadline = time.monotonic() + timeout
    while True:
        dep: dict[str, Any] = client(TIMES, id=dep_id)["deployment"]
        if dep["status"] in TERMINAL:
            return dep
        assert time.monotonic() < deadline, f"deployment {dep_id} still {dep['status']}"
        time.sleep(0.01)


def _ms(later: str, earlier: str) -> float:
    delta = datetime.fromisoformat(later) - datetime.fromisoformat(earlier)
    return delta.total_seconds() * 1000


def _dramatiq_round_trips(url: str, *, idle_s: float, runs: int) -> list[float]:
    """ms from ``send`` of a trivial message to its execution by a worker in this process."""
    broker = RedisBroker(url=url, namespace="bench-baseline")  # type: ignore[no-untyped-call]
    executed: dict[int, float] = {}
    done = threading.Event()

    def mark(n: int) -> None:
        executed[n] = time.perf_counter()
        done.set()

    actor = dramatiq.Actor(
        mark, broker=broker, actor_name="bench_mark", queue_name="bench", priority=0, options={}
    )
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    trips: list[float] = []
    try:
        for n in range(runs + 1):  # the first one warms the consumer up; not counted
            time.sleep(idle_s)
            done.clear()
            sent = time.perf_counter()
            actor.send(n)
            assert done.wait(10), "the baseline message was never executed"
            if n:
                trips.append((executed[n] - sent) * 1000)
    finally:
        worker.stop()
        broker.close()
    return trips


def _line(name: str, values: list[float]) -> str:
    return (
        f"median={median(values):.1f}ms p90={percentile(values, 90):.1f}ms "
        f"max={max(values):.1f}ms (n={len(values)}) {name}"
    )


def test_enqueue_to_start_latency(tmp_path: Path, pg_schema_url: str, redis_db_url: str) -> None:
    data = tmp_path / "data"
    overrides = {"database_url": pg_schema_url, "redis_url": redis_db_url}
    adapters = fake_adapters(DEFAULT_SOURCE, 0.0)
    env = {
        "SLIPWAY_DATA_DIR": str(data),
        "SLIPWAY_DATABASE_URL": pg_schema_url,
        "SLIPWAY_REDIS_URL": redis_db_url,
    }
    with running_server(data, lambda _: adapters, **overrides) as server:
        worker = _start_worker(env, tmp_path / "worker.log")
        try:
            client = server.client(Scope.DEPLOY)
            app_id = client(CREATE_APP, input=GIT_APP(name="latency"))["createApplication"]["id"]
            warmup = _deploy_and_wait(client, app_id)  # includes the worker's start-up
            runs = [_deploy_and_wait(client, app_id) for _ in range(RUNS)]
        finally:
            _stop_worker(worker)
    latencies = [_ms(r["startedAt"], r["createdAt"]) for r in runs if r["startedAt"]]
    # How long the worker's consumer sat idle between claiming one and the next request.
    gaps = [_ms(b["createdAt"], a["startedAt"]) for a, b in zip(runs, runs[1:], strict=False)]
    idle = median(gaps) / 1000
    hot = _dramatiq_round_trips(redis_db_url, idle_s=0, runs=BASELINE_RUNS)
    matched = _dramatiq_round_trips(redis_db_url, idle_s=idle, runs=BASELINE_RUNS)
    print(
        f"\nBENCH queue_latency: {RUNS} sequential deployments, enqueue-to-start "
        f"(startedAt - createdAt), API in-process + 1 fake worker process, PostgreSQL + Redis\n"
        f"  api        {_line('(target median < 200ms)', latencies)}\n"
        f"  warm-up    {_ms(warmup['startedAt'], warmup['createdAt']):.1f}ms "
        f"(worker start-up; not counted)\n"
        f"  worker idle between claim and next request: median={idle * 1000:.1f}ms\n"
        f"  baseline dramatiq send->execute, same Redis, worker in-process:\n"
        f"    hot      {_line('(back to back)', hot)}\n"
        f"    matched  {_line(f'(after {idle * 1000:.0f}ms idle, as the worker saw)', matched)}\n"
        f"  ratio api/matched median={median(latencies) / median(matched):.2f} "
        f"api/hot median={median(latencies) / median(hot):.2f}"
    )
    statuses = [r["status"] for r in runs]
    assert statuses == ["DONE"] * RUNS, [(r["status"], r["errorMessage"]) for r in runs]
