"""Distributed mode: API server and `slipway worker` in separate processes, PostgreSQL,
the Redis broker and the Redis log bus, deploying to the real Swarm engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import DEPLOY, LOGS_SUB, STATUS_SUB

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.postgres]
SLIPWAY = str(Path(sys.executable).with_name("slipway"))


class Workers:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        out = (self.log_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [SLIPWAY, "worker"], env={**self.env, **extra}, stdout=out, stderr=out
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def distributed(
    tmp_path: Path, pg_schema_url: str, redis_db_url: str, docker_client: Any
) -> Iterator[tuple[Server, Workers]]:
    data = tmp_path / "data"
    overrides = {"database_url": pg_schema_url, "redis_url": redis_db_url}
    with running_server(data, real_adapters, endpoint_mode="dnsrr", **overrides) as server:
        env = {
            **os.environ,
            "SLIPWAY_DATA_DIR": str(data),
            "SLIPWAY_DATABASE_URL": pg_schema_url,
            "SLIPWAY_REDIS_URL": redis_db_url,
            "SLIPWAY_ENDPOINT_MODE": "dnsrr",
            "SLIPWAY_HEALTH_TIMEOUT": "60",
        }
        workers = Workers(env, tmp_path)
        try:
            yield server, workers
        finally:
            workers.stop_all()


def test_worker_process_deploys_and_logs_cross_processes(
    distributed: tuple[Server, Workers], git_repo: Any, docker_client: Any, cleanup: list[str]
) -> None:
    server, workers = distributed
    workers.start()
    client = server.client(Scope.DEPLOY)
    app = create_git_app(server, git_repo("static-ok"), cleanup, name="dist")
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    logs = server.subscribe(LOGS_SUB, id=dep["id"], after=0)
    status = server.subscribe(STATUS_SUB, id=dep["id"])
    try:
        seqs = [line["seq"] for data in logs.messages(180) for line in data["deploymentLogs"]]
        states = [d["deploymentStatus"]["status"] for d in status.messages(60)]
    finally:
        logs.close()
        status.close()
    done = wait_finished(client, dep["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert seqs == list(range(1, len(done["logs"]) + 1))
    assert states[-1] == "DONE" and "RUNNING" in states
    assert done["pid"] is None
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert b"hello from slipway" in res.read()


def test_a_killed_worker_leaves_an_error_not_a_stuck_run(
    distributed: tuple[Server, Workers], git_repo: Any, docker_client: Any, cleanup: list[str]
) -> None:
    server, workers = distributed
    first = workers.start()
    client = server.client(Scope.DEPLOY)
    app = create_git_app(server, git_repo("slow-build"), cleanup, name="dist")
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    deadline = time.monotonic() + 60
    while client(STATUS_QUERY, id=dep["id"])["deployment"]["status"] != "RUNNING":
        assert time.monotonic() < deadline, "never started"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    workers.start()  # a new worker's first sweep finds the dead worker's run
    done = wait_finished(client, dep["id"], timeout=60)
    assert done["status"] == "ERROR"
    assert "worker lost" in done["errorMessage"]
    assert done["logs"][-1]["message"].startswith("Deployment finished: ERROR")
    assert done["application"]["status"] == "ERROR"


STATUS_QUERY = "query($id: ID!) { deployment(id: $id) { status } }"
