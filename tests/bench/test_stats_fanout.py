"""Benchmark: 100 ``applicationStats`` subscribers of one container against one.

A real ``slipway serve`` (embedded mode, its own process) deploys one application (busybox
httpd from a git repository). Its CPU time (utime+stime from /proc) is measured over
WINDOW seconds three times: with no subscriber, with one, and with 100 WebSocket
subscribers to ``applicationStats`` of that application (each draining its messages in a
thread of this process). The server opens one engine stats stream per container whoever
subscribes (tests/e2e/test_monitor_real.py proves the count); printed: the server's CPU as
a percentage of one core in each window, and the 100/1 ratio. Target: < 10 % of one core
for 100 subscribers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bench.procs import proc_sample, spawn, stop, wait_healthy
from tests.e2e.conftest import wait_finished
from tests.e2e.harness import Client, Subscription, free_port
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.versions import VersionedRepo

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SLIPWAY = str(Path(sys.executable).with_name("slipway"))
SUBSCRIBERS = 100
WINDOW = 20.0
QUERY = """subscription($id: ID!) { applicationStats(applicationId: $id) {
  taskId cpuPercent memoryBytes memoryLimitBytes networkRxBytes networkTxBytes at } }"""


def cpu_over(pid: int, seconds: float) -> float:
    """The process's CPU time over ``seconds`` of wall time, as % of one core."""
    before, start = proc_sample(pid).cpu_s, time.monotonic()
    time.sleep(seconds)
    return (proc_sample(pid).cpu_s - before) / (time.monotonic() - start) * 100


class Drain(threading.Thread):
    def __init__(self, sub: Subscription) -> None:
        super().__init__(daemon=True)
        self.sub = sub
        self.batches = 0

    def run(self) -> None:
        try:
            for data in self.sub.messages(timeout=600):
                if data["applicationStats"]:
                    self.batches += 1
        except Exception:  # noqa: BLE001 - closed at the end
            return


def test_stats_fanout_cpu(tmp_path: Path, docker_client: Any) -> None:
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_ENDPOINT_MODE": "dnsrr",
        "SLIPWAY_HEALTH_TIMEOUT": "60",
        "SLIPWAY_WS_MAX_CONNECTIONS_PER_KEY": "200",  # 100 sockets of one key
    }
    env.pop("SLIPWAY_REDIS_URL", None)
    env.pop("SLIPWAY_DATABASE_URL", None)
    subprocess.run([SLIPWAY, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    made = subprocess.run(
        [SLIPWAY, "api-key", "create", "--name", "bench", "--scope", "ADMIN"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "serve.log"
    server = spawn([SLIPWAY, "serve", "--host", "127.0.0.1", "--port", str(port)], env, log)
    name = None
    subs: list[Subscription] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, log)
        client = Client(f"{base}/graphql", key)
        repo = VersionedRepo(tmp_path)
        repo.commit("version one")
        app = client(
            CREATE_APP,
            input={
                "name": "stats",
                "sourceType": "GIT",
                "repository": f"file://{repo.bare}",
                "branch": "main",
                "ports": [
                    {"publishedPort": free_port(), "targetPort": 8080, "publishMode": "HOST"}
                ],
            },
        )["createApplication"]
        name = app["appName"]
        dep = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
        assert dep["status"] == "DONE", dep["errorMessage"]
        ws = f"ws://127.0.0.1:{port}/graphql"
        idle = cpu_over(server.pid, WINDOW)
        one = [Drain(Subscription(ws, key, QUERY, {"id": app["id"]}))]
        for d in one:
            d.start()
        time.sleep(3)
        single = cpu_over(server.pid, WINDOW)
        drains = [
            Drain(Subscription(ws, key, QUERY, {"id": app["id"]})) for _ in range(SUBSCRIBERS - 1)
        ]
        for d in drains:
            d.start()
        drains += one
        subs = [d.sub for d in drains]
        deadline = time.monotonic() + 30
        while not all(d.batches for d in drains):
            assert time.monotonic() < deadline, "not every subscriber got figures"
            time.sleep(0.2)
        hundred = cpu_over(server.pid, WINDOW)
        got = sorted(d.batches for d in drains)
        print()
        print(f"stats_fanout: serve CPU, % of one core over {WINDOW:.0f} s windows")
        print(f"  no subscriber    {idle:6.2f} %")
        print(f"  1 subscriber     {single:6.2f} %")
        print(f"  {SUBSCRIBERS} subscribers  {hundred:6.2f} %  (target < 10 %)")
        print(f"  100/1 ratio      {hundred / max(single, 0.01):6.2f}")
        print(f"  batches per subscriber: min {got[0]} median {got[len(got) // 2]} max {got[-1]}")
    finally:
        for sub in subs:
            sub.close()
        stop(server)
        if name:
            for service in docker_client.services.list(filters={"name": name}):
                service.remove()
