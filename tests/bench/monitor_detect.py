"""Benchmark: a container killed from outside -> the runtime monitor hands on APP_DOWN.

One application (busybox httpd) is deployed through a real embedded server with the
monitor on (recovery period 1 s, listing every 1 s). Then, KILLS times: the test's own
``docker events`` stream is open, ``docker kill`` of the task's container, and three
moments are taken from the kill:

* **engine**: the ``die`` event arrives on the test's own event stream (the baseline: the
  engine's own latency to say it);
* **monitor**: ``app.monitor.emit`` is called with APP_DOWN for this application (a
  logging handler on its log line, which the default emitter writes; the hand-off to the
  notifications);
* **row**: the incident row is visible in the database (polled every 10 ms);
* **notification**: the APP_DOWN notification reaches a loopback HTTP endpoint through
  apprise ``json://`` (outbox row, the notifications queue, a sender thread, apprise).

Between kills the service is left to recover (RECOVERED) so that each kill is a new
incident. Prints p50 and p99 of each and the notification/engine ratio of medians; the
target is notification p50 < 2 s, p99 < 5 s.
Run it by path: ``scripts/bench tests/bench/monitor_detect.py``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from app.db.repos import monitor
from app.engine.adapters import real_adapters
from app.types import Scope
from tests.bench.stats import median, percentile, seconds
from tests.e2e.conftest import cleanup as cleanup  # the fixture, for this module
from tests.e2e.conftest import create_git_app
from tests.e2e.harness import Server, running_server
from tests.e2e.test_monitor_real import containers, deploy, wait_for
from tests.e2e.test_monitor_real import stack as stack  # the fixture, for this module
from tests.support.notify_endpoint import endpoint
from tests.support.versions import VersionedRepo

pytestmark = pytest.mark.docker

KILLS = 15
SETTINGS = {
    "endpoint_mode": "dnsrr",
    "health_timeout": 60,
    "monitor_recovery_s": 1.0,
    "monitor_interval": 1.0,
}


class EmitTimes(logging.Handler):
    """The monotonic time of each ``monitor APP_DOWN: <app>`` line."""

    def __init__(self, app_name: str) -> None:
        super().__init__(logging.WARNING)
        self.prefix = f"monitor APP_DOWN: {app_name} "
        self.times: queue.Queue[float] = queue.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.times.put(time.monotonic())


@pytest.fixture
def server(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    with running_server(tmp_path / "data", real_adapters, **SETTINGS) as s:
        yield s


def test_monitor_detects_a_killed_container(
    stack: ExitStack,
    server: Server,
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,  # noqa: F811
) -> None:
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(server, repo.bare, cleanup)
    hook = stack.enter_context(endpoint())
    server.client(Scope.ADMIN)(
        "mutation($input: CreateNotificationInput!) { createNotification(input: $input) { id } }",
        input={"name": "bench", "url": hook.url(), "events": ["APP_DOWN"]},
    )
    deploy(server, app)
    handler = EmitTimes(app["appName"])
    logging.getLogger("app.monitor.emit").addHandler(handler)
    label = f"com.docker.swarm.service.name={app['appName']}"
    events = docker_client.events(
        decode=True, filters={"type": "container", "event": "die", "label": label}
    )
    dies: queue.Queue[float] = queue.Queue()

    def read() -> None:
        try:
            for _ in events:
                dies.put(time.monotonic())
        except Exception:  # noqa: BLE001 - closed at the end
            return

    threading.Thread(target=read, daemon=True).start()
    engine: list[float] = []
    emitted: list[float] = []
    row: list[float] = []
    notified: list[float] = []
    try:
        for n in range(1, KILLS + 1):
            [container] = wait_for(
                "one running container", lambda: containers(docker_client, app["appName"]), 30
            )
            t0 = time.monotonic()
            container.kill()
            while True:
                with server.db.session() as session:
                    found = monitor.incidents(session, app["id"])
                if len(found) >= n:
                    row.append(time.monotonic() - t0)
                    break
                assert time.monotonic() - t0 < 30, "no incident"
                time.sleep(0.01)
            engine.append(dies.get(timeout=30) - t0)
            emitted.append(handler.times.get(timeout=30) - t0)
            notified.append(hook.wait(n, timeout=30)[n - 1].at - t0)

            def recovered(count: int = n) -> bool:
                with server.db.session() as session:
                    found = monitor.incidents(session, app["id"])
                return len(found) == count and found[-1].recovered_sent_at is not None

            wait_for("RECOVERED", recovered, 60)
    finally:
        events.close()
        logging.getLogger("app.monitor.emit").removeHandler(handler)
    with server.db.session() as session:
        found = monitor.incidents(session, app["id"])
    assert len(found) == KILLS and all(i.kind == "APP_DOWN" and i.sent_at for i in found)
    print()
    print(f"monitor_detect: {KILLS} kills of {app['appName']}'s container")
    for name, values in (
        ("engine die event", engine),
        ("monitor APP_DOWN", emitted),
        ("incident row", row),
        ("notification", notified),
    ):
        print(
            f"  {name:17s} p50 {median(values):.3f}s  p99 {percentile(values, 99):.3f}s  "
            f"{seconds(values)}"
        )
    print(
        f"  notification/engine ratio of medians: {median(notified) / median(engine):.2f}"
        f"  (target: notification p50 < 2 s, p99 < 5 s)"
    )
