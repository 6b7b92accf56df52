"""The runtime monitor on the real engine: an application killed, failing its health
check, crash looping, and Slipway restarted, each seen once, recovered once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from app.db.models import Incident
from app.db.repos import monitor
from app.engine.adapters import real_adapters
from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import DEPLOY
from tests.support.notify_endpoint import endpoint
from tests.support.versions import VersionedRepo

pytestmark = pytest.mark.docker

MONITOR = {
    "endpoint_mode": "dnsrr",
    "health_timeout": 60,
    "monitor_recovery_s": 3.0,
    "monitor_interval": 1.0,
    "monitor_health_failures": 2,
}
HEALTH = "query($id: ID!) { application(id: $id) { health } }"
SECRET = "s3cret-token-value-42"


@pytest.fixture
def monitored(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    with running_server(tmp_path / "data", real_adapters, **MONITOR) as server:
        yield server


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


def incidents(server: Server, app_id: str) -> list[Incident]:
    with server.db.session() as session:
        return monitor.incidents(session, app_id)


def health(server: Server, app_id: str) -> str:
    value: str = server.client(Scope.READ)(HEALTH, id=app_id)["application"]["health"]
    return value


def containers(docker_client: Any, name: str) -> list[Any]:
    label = f"com.docker.swarm.service.name={name}"
    found: list[Any] = docker_client.containers.list(filters={"label": label})
    return found


def deploy(server: Server, app: dict[str, Any]) -> None:
    client = server.client(Scope.DEPLOY)
    dep = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert dep["status"] == "DONE", dep["errorMessage"]
    wait_for("HEALTHY after DONE", lambda: health(server, app["id"]) == "HEALTHY", 30)


def sent(caplog: pytest.LogCaptureFixture, event: str, app_name: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "app.monitor.emit"
        and r.getMessage().startswith(f"monitor {event}: {app_name}")
    )


class HealthFollower:
    """``applicationHealth`` over WebSocket in a thread: the health values sent."""

    def __init__(self, server: Server, app_id: str) -> None:
        self.values: list[str] = []
        self._sub = server.subscribe(
            "subscription($id: ID!) { applicationHealth(applicationId: $id) { health } }",
            id=app_id,
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for data in self._sub.messages(timeout=300):
                self.values.append(data["applicationHealth"]["health"])
        except Exception:  # noqa: BLE001 - closed at the end of the test
            return

    def close(self) -> None:
        self._sub.close()


def test_a_killed_container_is_one_app_down_then_recovered(
    stack: ExitStack,
    monitored: Server,
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        monitored,
        repo.bare,
        cleanup,
        env=[{"key": "TOKEN", "value": SECRET}],
        command=["sh", "-c", 'echo "starting with token=$TOKEN"; exec httpd -f -v -p 8080 -h /www'],
    )
    hook = stack.enter_context(endpoint())
    monitored.client(Scope.ADMIN)(
        "mutation($input: CreateNotificationInput!) { createNotification(input: $input) { id } }",
        input={
            "name": "on call",
            "url": hook.url(),
            "events": ["APP_DOWN", "RECOVERED"],
            "applicationIds": [app["id"]],
        },
    )
    deploy(monitored, app)
    follower = HealthFollower(monitored, app["id"])
    wait_for("the subscription's first value", lambda: follower.values, 10)
    assert follower.values[0] == "HEALTHY"
    assert incidents(monitored, app["id"]) == []

    [container] = containers(docker_client, app["appName"])
    container.kill()
    [down] = wait_for("an incident", lambda: incidents(monitored, app["id"]), 20)
    assert down.kind == "APP_DOWN" and down.sent_at is not None
    assert down.detail["exit_code"] == 137 and down.detail["oom_killed"] is False
    assert "137" in down.detail["reason"], down.detail
    logs = "\n".join(down.detail["logs"])
    assert "starting with token=" in logs and SECRET not in logs, logs
    assert SECRET not in str(down.detail)
    wait_for("health DOWN", lambda: "DOWN" in follower.values, 10)
    [message] = hook.wait(1)  # the notification, through apprise json:// to a real endpoint
    text = message.body["title"] + "\n" + message.body["message"]
    assert "application down" in text and app["appName"] in text, text
    assert "137" in text and "starting with token=" in text and SECRET not in text, text

    # Swarm starts a new task; once it has run for the recovery period: RECOVERED.
    recovered = wait_for(
        "RECOVERED",
        lambda: [i for i in incidents(monitored, app["id"]) if i.recovered_sent_at],
        60,
    )
    assert [i.id for i in recovered] == [down.id]
    wait_for("HEALTHY again", lambda: follower.values[-1:] == ["HEALTHY"], 10)
    time.sleep(3)  # nothing more is sent
    assert len(incidents(monitored, app["id"])) == 1
    assert sent(caplog, "APP_DOWN", app["appName"]) == 1
    assert sent(caplog, "RECOVERED", app["appName"]) == 1
    assert follower.values == ["HEALTHY", "DOWN", "HEALTHY"]
    assert len(hook.received) == 2 and "application recovered" in hook.received[1].body["title"]
    follower.close()
    assert health(monitored, app["id"]) == "HEALTHY"


def test_a_health_check_that_starts_failing_is_health_check_failed(
    monitored: Server,
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two failed checks in a row (the setting here) are HEALTH_CHECK_FAILED; Swarm then
    replaces the unhealthy container (third failure), which is the same incident; the new
    container is healthy: RECOVERED."""
    caplog.set_level(logging.INFO)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        monitored,
        repo.bare,
        cleanup,
        healthCheckCommand=["CMD-SHELL", "test ! -f /tmp/broken || (echo broken; exit 1)"],
    )
    deploy(monitored, app)
    [container] = containers(docker_client, app["appName"])
    container.exec_run(["touch", "/tmp/broken"])
    [failed] = wait_for("an incident", lambda: incidents(monitored, app["id"]), 40)
    assert failed.kind == "HEALTH_CHECK_FAILED" and failed.sent_at is not None
    assert failed.detail["failing_streak"] >= 2 and failed.detail["output"] == "broken"
    assert health(monitored, app["id"]) in ("UNHEALTHY", "DOWN")
    wait_for(
        "RECOVERED",
        lambda: [i for i in incidents(monitored, app["id"]) if i.recovered_sent_at],
        90,
    )
    assert health(monitored, app["id"]) == "HEALTHY"
    assert [i.kind for i in incidents(monitored, app["id"])] == ["HEALTH_CHECK_FAILED"]
    assert sent(caplog, "HEALTH_CHECK_FAILED", app["appName"]) == 1
    assert sent(caplog, "APP_DOWN", app["appName"]) == 0
    assert sent(caplog, "RECOVERED", app["appName"]) == 1


def test_a_crash_loop_of_ten_restarts_is_one_app_down(
    monitored: Server,
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    flag = tmp_path / "flag"
    flag.mkdir()
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(
        monitored,
        repo.bare,
        cleanup,
        mounts=[{"type": "bind", "source": str(flag), "target": "/flag"}],
        command=[
            "sh",
            "-c",
            "httpd -p 8080 -h /www; while [ ! -f /flag/crash ]; do sleep 0.2; done; "
            "echo crashing; exit 3",
        ],
    )
    deploy(monitored, app)
    label = f"com.docker.swarm.service.name={app['appName']}"
    since = int(time.time()) - 1
    (flag / "crash").touch()  # the running task exits 3, and so does every restart
    deaths = 0
    events = docker_client.events(
        decode=True, since=since, filters={"type": "container", "event": "die", "label": label}
    )
    try:
        deadline = time.monotonic() + 120
        for event in events:
            assert event["Actor"]["Attributes"]["exitCode"] == "3"
            deaths += 1
            if deaths >= 11:  # the first exit and ten restarts
                break
            assert time.monotonic() < deadline, f"only {deaths} exits"
    finally:
        events.close()
    [down] = incidents(monitored, app["id"])
    assert down.kind == "APP_DOWN" and down.detail["exit_code"] == 3
    assert "crashing" in down.detail["logs"]
    assert down.recovered_at is None and health(monitored, app["id"]) == "DOWN"
    assert sent(caplog, "APP_DOWN", app["appName"]) == 1

    (flag / "crash").unlink()  # the next restart runs: one RECOVERED
    wait_for(
        "RECOVERED",
        lambda: [i for i in incidents(monitored, app["id"]) if i.recovered_sent_at],
        60,
    )
    assert len(incidents(monitored, app["id"])) == 1
    assert sent(caplog, "RECOVERED", app["appName"]) == 1


def test_slipway_restarted_resumes_and_never_sends_an_incident_again(
    tmp_path: Path,
    cleanup: list[str],
    docker_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A container killed while Slipway is stopped is seen when it starts again (the
    watcher resumes from its cursor); a second restart replays the same events and sends
    nothing."""
    caplog.set_level(logging.INFO)
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    with running_server(tmp_path / "data", real_adapters, **MONITOR) as first:
        app = create_git_app(first, repo.bare, cleanup)
        deploy(first, app)
    [container] = containers(docker_client, app["appName"])
    container.kill()
    time.sleep(1)
    with running_server(tmp_path / "data", real_adapters, **MONITOR) as second:
        [down] = wait_for("an incident", lambda: incidents(second, app["id"]), 30)
        assert down.kind == "APP_DOWN" and down.detail["exit_code"] == 137
        wait_for("RECOVERED", lambda: incidents(second, app["id"])[0].recovered_sent_at, 60)
    with running_server(tmp_path / "data", real_adapters, **MONITOR) as third:
        time.sleep(6)  # a few intervals: the replayed die and the listings
        assert len(incidents(third, app["id"])) == 1
        assert health(third, app["id"]) == "HEALTHY"
    assert sent(caplog, "APP_DOWN", app["appName"]) == 1
    assert sent(caplog, "RECOVERED", app["appName"]) == 1


def test_application_health_needs_a_key_and_read_is_enough(monitored: Server) -> None:
    from tests.e2e.harness import Client

    app = monitored.client(Scope.ADMIN)(
        'mutation { createApplication(input: {name: "h", sourceType: DOCKER, '
        'dockerImage: "busybox:1.36"}) { id health } }'
    )["createApplication"]
    assert app["health"] == "UNKNOWN"
    sub = monitored.subscribe(
        "subscription($id: ID!) { applicationHealth(applicationId: $id) { id health } }",
        id=app["id"],
    )
    first = next(sub.messages(timeout=10))
    sub.close()
    assert first == {"applicationHealth": {"id": app["id"], "health": "UNKNOWN"}}
    body = Client(monitored.url, None).raw(HEALTH, id=app["id"])
    assert body["errors"] and body.get("data") is None


def test_application_stats_is_one_engine_stream_per_container_for_all_subscribers(
    monitored: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    repo = VersionedRepo(tmp_path)
    repo.commit("version one")
    app = create_git_app(monitored, repo.bare, cleanup)
    deploy(monitored, app)
    streams = monitored.server.config.app.state.slipway.stats
    [container] = containers(docker_client, app["appName"])
    query = """subscription($id: ID!) { applicationStats(applicationId: $id) {
        taskId containerId cpuPercent memoryBytes memoryLimitBytes networkRxBytes
        networkTxBytes at } }"""
    subs = [monitored.subscribe(query, id=app["id"]) for _ in range(5)]
    try:
        for sub in subs:
            batch: list[dict[str, Any]] = []
            for data in sub.messages(timeout=20):
                batch = data["applicationStats"]
                if batch:
                    break
            [figures] = batch
            assert figures["containerId"] == container.id
            assert 0 < figures["memoryBytes"] <= figures["memoryLimitBytes"]
            assert figures["cpuPercent"] >= 0 and figures["networkRxBytes"] >= 0
        assert streams.open_streams() == 1 and streams.opened == 1  # five subscribers
    finally:
        for sub in subs:
            sub.close()
    wait_for("the stream closed", lambda: streams.open_streams() == 0, 15)
