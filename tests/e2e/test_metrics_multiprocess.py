"""``SLIPWAY_METRICS_DIR``: a `slipway serve` and a worker process (distributed mode,
PostgreSQL and Redis) share the directory, and the serve's ``/metrics`` counts the
deployment the worker ran; files of processes that ended are removed at start."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from app.types import Scope
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Client, Subscription, free_port
from tests.e2e.metrics_support import scrape, scrape_until
from tests.e2e.queries import CREATE_APP, DEPLOY, LOGS_SUB
from tests.support.processes import (
    Proc,
    create_api_key,
    slipway_env,
    start_serve,
    start_worker,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
REDIS_DB = 13  # of its own: a worker of another test must not take our messages
LINES = 40
SUBS = "slipway_subscribers"


def ended_pid() -> int:
    """The pid of a process that has already exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_a_workers_counters_show_in_the_serves_metrics(
    tmp_path: Path, pg_schema_url: str, redis_url: str
) -> None:
    redis_db = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(redis_db).flushdb()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stale = metrics_dir / f"counter_{ended_pid()}.db"
    stale.write_bytes(b"\0" * 16)  # what a killed process leaves
    env = slipway_env(
        data_dir=tmp_path / "data",
        database_url=pg_schema_url,
        redis_url=redis_db,
        metrics_dir=str(metrics_dir),
    )
    port = free_port()
    serve = start_serve(env, tmp_path / "serve.log", port=port)
    # the build logs over 3 s: the log subscription is still open when scraped below
    worker = start_worker(env, tmp_path / "worker.log", lines=LINES, step_seconds=3)
    try:
        assert not stale.exists(), "the file of an ended process was kept"
        base = f"http://127.0.0.1:{port}/graphql"
        key = create_api_key(env, scope=Scope.ADMIN.value)
        client = Client(base, key)
        app = client(CREATE_APP, input=GIT_APP())["createApplication"]
        before = scrape(base, key=key)
        dep = client(DEPLOY, id=app["id"])["deployApplication"]
        sub = Subscription(base.replace("http", "ws"), key, LOGS_SUB, {"id": dep["id"], "after": 0})
        try:
            messages = sub.messages(120)
            seqs = [line["seq"] for line in next(messages)["deploymentLogs"]]
            during = scrape(base, key=key)
            seqs += [line["seq"] for data in messages for line in data["deploymentLogs"]]
        finally:
            sub.close()
        done = wait_finished(client, dep["id"])
        assert done["status"] == "DONE", (done["errorMessage"], worker.tail())
        assert seqs == list(range(1, len(done["logs"]) + 1))
        after = scrape(base, key=key)
        assert {f"counter_{worker.pid}.db", f"histogram_{worker.pid}.db"} <= {
            p.name for p in metrics_dir.iterdir()
        }

        def delta(name: str, **labels: str) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        # counted by the worker process, read from its files by the serve process
        assert delta("slipway_deployments_finished_total", status="DONE", trigger="MANUAL") == 1
        for step in done["steps"]:
            count = delta("slipway_step_duration_seconds_count", step=step["step"], outcome="DONE")
            assert count == 1, step
        assert delta("slipway_log_lines_published_total") == len(done["logs"]) > LINES
        # the serve's own: the subscription while it ran, and the Redis bus it read
        assert during.value(SUBS, transport="websocket") == 1
        scrape_until(
            base, key, lambda s: s.value("slipway_subscribers", transport="websocket") == 0
        )
        assert delta("slipway_bus_delivery_lag_seconds_count") >= 1
        processes = [ls["process"] for ls in after.labels_of("slipway_bus_lag_seconds")]
        assert [p.rsplit(":", 1)[1] for p in processes] == [str(serve.pid)]
        assert 0 <= after.value("slipway_bus_lag_seconds", process=processes[0]) < 5
        assert after.value("slipway_database_up") == 1
    finally:
        worker.stop()
        serve.stop()
    # a process that stopped takes its live gauges out of the directory
    assert not list(metrics_dir.glob(f"gauge_live*_{serve.pid}.db"))


def test_a_worker_without_a_shared_directory_serves_its_own_metrics(
    tmp_path: Path, pg_schema_url: str, redis_url: str
) -> None:
    """SLIPWAY_WORKER_METRICS_PORT: the worker's counters on its own /metrics (token or key,
    401 without), the serve's /metrics without them (no directory shared)."""
    redis_db = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(redis_db).flushdb()
    token = "scrape-the-worker-with-this"
    env = slipway_env(
        data_dir=tmp_path / "data",
        database_url=pg_schema_url,
        redis_url=redis_db,
        metrics_token=token,
    )
    port, worker_port = free_port(), free_port()
    serve = start_serve(env, tmp_path / "serve.log", port=port)
    worker_env = {**env, "SLIPWAY_WORKER_METRICS_PORT": str(worker_port)}
    worker = start_worker(worker_env, tmp_path / "worker.log", lines=LINES)
    try:
        base = f"http://127.0.0.1:{port}/graphql"
        worker_base = f"http://127.0.0.1:{worker_port}"
        key = create_api_key(env, scope=Scope.READ.value)
        client = Client(base, create_api_key(env, scope=Scope.DEPLOY.value))
        app = client(CREATE_APP, input=GIT_APP())["createApplication"]
        wait_listening(worker_port, worker)
        before = scrape(worker_base, token=token)
        dep = client(DEPLOY, id=app["id"])["deployApplication"]
        done = wait_finished(client, dep["id"])
        assert done["status"] == "DONE", (done["errorMessage"], worker.tail())
        after = scrape(worker_base, key=key)  # a READ key works there too
        done_manual = {"status": "DONE", "trigger": "MANUAL"}
        name = "slipway_deployments_finished_total"
        assert after.value(name, **done_manual) - before.value(name, **done_manual) == 1
        lines = "slipway_log_lines_published_total"
        assert after.value(lines) - before.value(lines) == len(done["logs"])
        assert after.value("slipway_database_up") == 1
        assert scrape(base, key=key).value(name, **done_manual) == 0  # not in serve's
        for headers in ({}, {"authorization": "Bearer not-the-token-at-all"}):
            res = httpx.get(f"{worker_base}/metrics", headers=headers, timeout=10)
            assert res.status_code == 401 and "slipway_" not in res.text
    finally:
        worker.stop()
        serve.stop()


def wait_listening(port: int, worker: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), worker.tail()
        try:
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.1)
