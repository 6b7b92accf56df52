"""Live logs over a real WebSocket: replay + follow with no gap and no duplicate."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.logs.files import last_seq, read_after
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY, LOGS_SUB


def _collect(server: Server, dep_id: str, after: int) -> list[dict[str, object]]:
    sub = server.subscribe(LOGS_SUB, id=dep_id, after=after)
    lines: list[dict[str, object]] = []
    try:
        for data in sub.messages(timeout=120):
            lines.extend(data["deploymentLogs"])
    finally:
        sub.close()
    return lines


def _wait_lines(path: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while last_seq(path) < count:
        assert time.monotonic() < deadline, f"fewer than {count} lines after {timeout}s"
        time.sleep(0.01)


def test_subscriber_joining_after_500_lines_gets_every_line_once(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 3000, 0.0005
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    _wait_lines(Path(dep["logPath"]), 500)
    assert last_seq(Path(dep["logPath"])) < 3000, "the deployment must still be writing"
    lines = _collect(fake_server, dep["id"], 0)
    final = last_seq(Path(dep["logPath"]))
    assert [line["seq"] for line in lines] == list(range(1, final + 1))
    assert final > 3000


def test_many_live_subscribers_joining_mid_stream_each_get_everything(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 4000, 0.0005
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    path = Path(dep["logPath"])
    results: dict[int, list[int]] = {}

    def follow(n: int, after: int) -> None:
        results[n] = [int(x["seq"]) for x in _collect(fake_server, dep["id"], after)]  # type: ignore[call-overload]

    threads = []
    for n, join_at in enumerate((0, 200, 900, 1800)):
        _wait_lines(path, join_at)
        after = 100 if n == 3 else 0
        threads.append(threading.Thread(target=follow, args=(n, after)))
        threads[-1].start()
    for t in threads:
        t.join(timeout=120)
    final = last_seq(path)
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    for n in range(3):
        assert results[n] == list(range(1, final + 1)), f"subscriber {n}"
    assert results[3] == list(range(101, final + 1))


def test_finished_deployment_replays_and_completes(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    lines = _collect(fake_server, dep["id"], 5)
    on_disk = read_after(Path(dep["logPath"]), 5)
    assert [x["seq"] for x in lines] == [x.seq for x in on_disk]
    assert lines[-1]["message"] == "Deployment finished: DONE"
    assert {x["stream"] for x in lines} >= {"SYSTEM", "STDOUT"}
