"""EngineWatcher against the real engine, with rows made directly (SQLite and PostgreSQL):
two watchers share one engine's lease (one watches; the other takes over when it stops),
and a watcher whose event stream drops reconnects and still sees the next kill."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker.types as dt
import pytest
from sqlalchemy.orm import Session

from app.crypto import Cipher, load_or_create_key
from app.db.base import utcnow
from app.db.migrate import upgrade
from app.db.models import Application, Deployment
from app.db.repos import monitor
from app.db.session import Database
from app.logs.bus.memory import MemoryBus
from app.monitor.emit import MonitorMessage
from app.monitor.watcher import EngineWatcher
from app.runtime.connection import EngineConnection
from app.settings import Settings
from app.types import NotificationEvent

pytestmark = pytest.mark.docker


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        _env_file=None,
        monitor_interval=0.5,
        monitor_lease_s=2.0,
        monitor_recovery_s=1.0,
    )


@pytest.fixture
def service(docker_client: Any, db: Database) -> Iterator[tuple[str, str]]:
    """A Swarm service carrying the labels of an application's DONE deployment."""
    name = f"mon-{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        app = Application(name=name, app_name=name, source_type="DOCKER")
        session.add(app)
        session.flush()
        dep = Deployment(
            application_id=app.id,
            title="d",
            status="DONE",
            log_path="/dev/null",
            finished_at=utcnow() - timedelta(seconds=1),
        )
        session.add(dep)
        session.flush()
        app_id, dep_id = app.id, dep.id
    svc = docker_client.services.create(
        "busybox:1.36",
        ["sleep", "3600"],
        name=name,
        container_labels={"slipway.application": app_id, "slipway.deployment": dep_id},
        restart_policy=dt.RestartPolicy(condition="any", delay=1_000_000_000),
    )
    try:
        wait_for("a running container", lambda: running(docker_client, name), 60)
        yield app_id, name
    finally:
        svc.remove()


def running(docker_client: Any, name: str) -> list[Any]:
    found: list[Any] = docker_client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={name}"}
    )
    return found


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.1)
    return found


class Sent(list[MonitorMessage]):
    def __call__(self, session: Session, message: MonitorMessage) -> None:  # noqa: ARG002
        self.append(message)


def watcher(db: Database, settings: Settings, sent: Sent, holder: str) -> EngineWatcher:
    return EngineWatcher(
        engine_key="local",
        connection=EngineConnection(None),
        db=db,
        bus=MemoryBus(),
        cipher=Cipher(load_or_create_key(settings)),
        settings=settings,
        emitter=sent,
        holder=holder,
    )


def downs(sent: Sent, app_id: str) -> list[MonitorMessage]:
    return [m for m in sent if m.application_id == app_id and m.event is NotificationEvent.APP_DOWN]


def test_one_of_two_watchers_watches_and_the_other_takes_over(
    db: Database, settings: Settings, service: tuple[str, str], docker_client: Any
) -> None:
    app_id, name = service
    sent = Sent()
    first, second = watcher(db, settings, sent, "first"), watcher(db, settings, sent, "second")
    first.start()
    wait_for("the first watching", first.watching.is_set, 10)
    second.start()
    try:
        time.sleep(2 * settings.monitor_lease_s)  # renewed all along: the second waits
        assert first.watching.is_set() and not second.watching.is_set()
        [container] = running(docker_client, name)
        container.kill()
        wait_for("APP_DOWN", lambda: downs(sent, app_id), 10)
        first.stop()  # releases the lease: the second takes the engine at once
        wait_for("the second watching", second.watching.is_set, 10)
        wait_for("RECOVERED", lambda: [m for m in sent if m.event is NotificationEvent.RECOVERED])
        [container] = wait_for("a new container", lambda: running(docker_client, name))
        container.kill()
        wait_for("a second APP_DOWN", lambda: len(downs(sent, app_id)) == 2, 10)
    finally:
        first.stop()
        second.stop()
    assert len(downs(sent, app_id)) == 2  # each incident once, whichever process saw it
    with db.session() as session:
        assert [i.kind for i in monitor.incidents(session, app_id)] == ["APP_DOWN", "APP_DOWN"]


def test_a_dropped_event_stream_is_reconnected_from_the_cursor(
    db: Database,
    settings: Settings,
    service: tuple[str, str],
    docker_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_id, name = service
    sent = Sent()
    w = watcher(db, settings, sent, "only")
    w.start()
    try:
        wait_for("watching", w.watching.is_set, 10)
        time.sleep(1)
        with caplog.at_level(logging.WARNING, logger="app.monitor.watcher"):
            w._close_stream()  # as when the engine goes away: the stream ends
            wait_for("the reconnect", lambda: "event stream ended" in caplog.text, 10)
        time.sleep(1.5)  # the back-off, then a new stream from the cursor
        [container] = running(docker_client, name)
        container.kill()
        [down] = wait_for("APP_DOWN", lambda: downs(sent, app_id), 15)
        assert down.detail["exit_code"] == 137
    finally:
        w.stop()
