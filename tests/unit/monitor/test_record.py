"""Recording observations in the database (SQLite and PostgreSQL): one message per
incident, replays change nothing, the engine lease, and which applications are watched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.migrate import upgrade
from app.db.models import Application, Deployment
from app.db.repos import monitor
from app.db.session import Database
from app.logs.bus.memory import MemoryBus
from app.monitor.emit import MonitorMessage
from app.monitor.incidents import Observation, Seen
from app.monitor.record import Recorder
from app.types import NotificationEvent


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


class Sent(list[MonitorMessage]):
    def __call__(self, session: Session, message: MonitorMessage) -> None:  # noqa: ARG002
        self.append(message)

    @property
    def events(self) -> list[NotificationEvent]:
        return [m.event for m in self]


def make_app(db: Database, name: str = "web", *statuses: str) -> str:
    with db.session() as session:
        app = Application(name=name, app_name=name, source_type="GIT")
        session.add(app)
        session.flush()
        for i, status in enumerate(statuses or ("DONE",)):
            finished = None if status == "RUNNING" else utcnow() - timedelta(seconds=60 - i)
            session.add(
                Deployment(
                    application_id=app.id,
                    title=f"d{i}",
                    status=status,
                    log_path="/dev/null",
                    finished_at=finished,
                )
            )
        return app.id


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_a_crash_loop_sends_one_app_down_and_one_recovered(db: Database) -> None:
    app_id = make_app(db)
    sent = Sent()
    bus = MemoryBus()
    recorder = Recorder(db=db, bus=bus, emit=sent)
    recorder.apply(app_id, Observation(Seen.UP, later(0)))
    for i in range(10):
        recorder.apply(app_id, Observation(Seen.DOWN, later(1 + i), "dep", {"exit_code": 3}))
    recorder.apply(app_id, Observation(Seen.UP, later(30)))
    assert sent.events == [NotificationEvent.APP_DOWN, NotificationEvent.RECOVERED]
    assert sent[0].detail == {"exit_code": 3} and "exit code 3" in sent[0].summary()
    with db.session() as session:
        [incident] = monitor.incidents(session, app_id)
        assert incident.sent_at and incident.recovered_at and incident.recovered_sent_at
        assert session.get(Application, app_id).health == "HEALTHY"  # type: ignore[union-attr]


def test_replayed_observations_send_nothing_again(db: Database) -> None:
    """A restarted watcher resumes from its cursor and sees the same events again."""
    app_id = make_app(db)
    first = Sent()
    down = Observation(Seen.DOWN, later(1), "dep", {"exit_code": 137})
    up = Observation(Seen.UP, later(20))
    Recorder(db=db, bus=MemoryBus(), emit=first).apply(app_id, down)
    Recorder(db=db, bus=MemoryBus(), emit=first).apply(app_id, up)
    again = Sent()
    replay = Recorder(db=db, bus=MemoryBus(), emit=again)
    assert replay.apply(app_id, down) is None
    assert again == [] and first.events == [NotificationEvent.APP_DOWN, NotificationEvent.RECOVERED]
    # while open, a replay is absorbed by the open incident
    app2 = make_app(db, "api")
    Recorder(db=db, bus=MemoryBus(), emit=first).apply(app2, down)
    Recorder(db=db, bus=MemoryBus(), emit=again).apply(app2, down)
    assert again == []


def test_health_changes_are_announced_on_the_application_topic(db: Database) -> None:
    app_id = make_app(db)
    bus = MemoryBus()
    recorder = Recorder(db=db, bus=bus, emit=Sent())
    seen: list[object] = []
    bus.publish = lambda topic, message: seen.append((topic, message))  # type: ignore[method-assign]
    recorder.apply(app_id, Observation(Seen.UP, later(0)))
    recorder.apply(app_id, Observation(Seen.UP, later(1)))  # no change: no announcement
    assert [t for t, _ in seen] == [f"application:{app_id}"]


def test_the_engine_lease_has_one_holder_until_it_expires(db: Database) -> None:
    with db.session(locking=True) as s:
        assert monitor.acquire(s, engine="local", holder="a", ttl=30)
    with db.session(locking=True) as s:
        assert not monitor.acquire(s, engine="local", holder="b", ttl=30)
    with db.session(locking=True) as s:
        assert monitor.acquire(s, engine="local", holder="a", ttl=0.01)  # renewed, short
    import time

    time.sleep(0.05)
    with db.session(locking=True) as s:
        assert monitor.acquire(s, engine="local", holder="b", ttl=30)  # expired: taken over
    with db.session() as s:
        assert not monitor.save_cursor(s, engine="local", holder="a", event_ns=5)
        assert monitor.save_cursor(s, engine="local", holder="b", event_ns=7)
        assert monitor.save_cursor(s, engine="local", holder="b", event_ns=6)  # never back
    with db.session() as s:
        assert monitor.cursor(s, "local") == 7
        monitor.release(s, engine="local", holder="b")
    with db.session(locking=True) as s:
        assert monitor.acquire(s, engine="local", holder="c", ttl=30)


def test_only_applications_whose_last_deployment_is_done_and_none_runs_are_watched(
    db: Database,
) -> None:
    done = make_app(db, "done", "ERROR", "DONE")
    make_app(db, "failed", "DONE", "ERROR")
    make_app(db, "deploying", "DONE", "RUNNING")
    make_app(db, "never", "QUEUED")
    with db.session() as s:
        found = monitor.watched(s)
    assert [w.app_id for w in found] == [done]
    with db.session() as s:
        dep = s.get(Deployment, found[0].deployment_id)
        assert dep is not None and dep.title == "d1"


def test_an_incident_a_crash_left_unsent_is_sent_once_by_the_next_sweep(db: Database) -> None:
    from app.db.models import Incident

    app_id = make_app(db)
    with db.session() as session:  # committed, then the process died before the send
        session.add(Incident(application_id=app_id, kind="APP_DOWN", detail={"exit_code": 1}))
    sent = Sent()
    recorder = Recorder(db=db, bus=MemoryBus(), emit=sent)
    assert recorder.send_pending() == 1
    assert recorder.send_pending() == 0
    assert sent.events == [NotificationEvent.APP_DOWN] and sent[0].detail == {"exit_code": 1}

    # a failing emitter does not break the monitor, and the event is not sent twice
    def broken(_: Session, __: MonitorMessage) -> None:
        raise RuntimeError("no")

    other = make_app(db, "api")
    Recorder(db=db, bus=MemoryBus(), emit=broken).apply(other, Observation(Seen.DOWN, later(1)))
    assert Recorder(db=db, bus=MemoryBus(), emit=sent).send_pending() == 0
