"""The runtime monitor on the real engine: an application killed, failing its health
check, crash looping, and Slipway restarted, each seen once, recovered once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
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
    follower.close()
    assert health(monitored, app["id"]) == "HEALTHY"
