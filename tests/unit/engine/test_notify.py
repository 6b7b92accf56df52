"""Notifications of finished deployments: the dispatcher's outbox rows and their delivery
through real apprise to a real HTTP endpoint on loopback (``json://``, ``form://``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from app.db.base import utcnow
from app.db.models import Notification
from app.db.models import NotificationDelivery as Delivery
from app.db.repos import deployments
from app.engine.recovery import reap_dead
from app.notify.deliver import Deliverer
from app.notify.dispatch import EventDetails, Notifier
from app.notify.transport import AppriseTransport
from app.queue.notifications import prune_deliveries, resend_overdue
from app.types import NotificationEvent
from tests.support.fake_servers import refusing_port, silent_server
from tests.support.notify_endpoint import Endpoint, endpoint
from tests.unit.engine.conftest import World

ALL = [e.value for e in NotificationEvent]


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    def send(self, delivery_id: str, delay_s: float = 0.0) -> None:
        self.sent.append((delivery_id, delay_s))


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with endpoint() as ep:
        yield ep


def _setup(world: World, **settings: Any) -> tuple[RecordingQueue, Deliverer]:
    world.settings = world.settings.model_copy(
        update={"public_url": "https://slipway.example.com", "notify_backoff": 0.1, **settings}
    )
    queue = RecordingQueue()
    world.engine.notifier = Notifier(
        db=world.db, cipher=world.cipher, settings=world.settings, queue=queue
    )
    deliverer = Deliverer(
        db=world.db, cipher=world.cipher, settings=world.settings, transport=AppriseTransport()
    )
    return queue, deliverer


def _notification(world: World, url: str, events: list[str] = ALL, **fields: Any) -> str:
    with world.db.session() as session:
        row = Notification(
            name=fields.pop("name", "team"),
            url_enc=world.cipher.encrypt_json(url),
            service="JSON",
            scheme=url.partition("://")[0],
            events=events,
            application_ids=fields.pop("application_ids", []),
        )
        session.add(row)
        session.flush()
        return row.id


def _row(world: World, notification_id: str) -> Notification:
    with world.db.session() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        session.expunge(row)
        return row


def _deliveries(world: World) -> list[Delivery]:
    with world.db.session() as session:
        rows = list(session.query(Delivery).order_by(Delivery.created_at).all())
        for row in rows:
            session.expunge(row)
        return rows


def test_a_done_deployment_is_announced_with_its_facts(world: World, hook: Endpoint) -> None:
    queue, deliverer = _setup(world)
    note = _notification(world, hook.url())
    app_id = world.app()
    dep_id = world.submit(app_id).deployment.id
    assert world.engine.run(dep_id)
    assert len(queue.sent) == 1 and queue.sent[0][1] == 0
    attempt = deliverer.deliver(queue.sent[0][0])
    assert attempt is not None and attempt.sent
    [got] = hook.wait(1)
    assert got.path == "/hook/tok-7f3a9c2e51"
    title, message = got.body["title"], got.body["message"]
    assert title == "[Slipway] web: deployment succeeded"
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        sha = dep.commit_sha
    assert sha and f"Commit: {sha[:12]}" in message
    assert f"Deployment: {dep_id} (Manual deployment)" in message
    assert "Application: web (service web-" in message
    assert "Trigger: MANUAL" in message and "Duration: " in message
    assert f"https://slipway.example.com/ui/deployments/{dep_id}" in message
    assert "Error:" not in message and "log lines" not in message
    row = _row(world, note)
    assert row.last_sent_at is not None and row.last_error is None
    assert [d.status for d in _deliveries(world)] == ["SENT"]
    assert deliverer.deliver(queue.sent[0][0]) is None, "a sent message is not sent again"
    assert len(hook.received) == 1


def test_a_failed_deployment_says_why_with_its_last_lines_masked(
    world: World, hook: Endpoint
) -> None:
    queue, deliverer = _setup(world, public_url="")
    _notification(world, hook.url("form"), events=["DEPLOY_FAILED"])
    world.builder.fail = "could not log in with top-secret-value"
    world.builder.lines = 30
    dep_id = world.submit(world.app()).deployment.id
    assert world.engine.run(dep_id)
    [(delivery_id, _)] = queue.sent
    attempt = deliverer.deliver(delivery_id)
    assert attempt is not None and attempt.sent
    [got] = hook.wait(1)
    title, message = got.body["title"], got.body["message"]
    assert title == "[Slipway] web: deployment failed"
    assert "Error: could not log in with ********" in message
    assert "Last 20 log lines:" in message
    assert "Deployment finished: ERROR: could not log in with ********" in message
    assert "Step 30/30 : fake build" in message and "Step 5/30 " not in message
    assert "top-secret-value" not in message and "top-secret-value" not in title
    assert "/ui/" not in message, "no link without SLIPWAY_PUBLIC_URL"


def test_events_and_applications_choose_who_is_told(world: World, hook: Endpoint) -> None:
    queue, _ = _setup(world)
    mine, other = world.app(), world.app()
    _notification(world, hook.url(), events=["DEPLOY_FAILED"], name="failures")
    only_other = _notification(world, hook.url(), name="other", application_ids=[other])
    everyone = _notification(world, hook.url(), name="all")
    assert world.engine.run(world.submit(mine).deployment.id)  # DONE
    assert [d.notification_id for d in _deliveries(world)] == [everyone]
    notifier = world.engine.notifier
    assert notifier is not None
    ids = notifier.emit(NotificationEvent.APP_DOWN, application_id=other)
    assert {d.notification_id for d in _deliveries(world) if d.id in ids} == {
        only_other,
        everyone,
    }
    assert len(queue.sent) == 3


def test_emit_masks_what_a_caller_gives(world: World, hook: Endpoint) -> None:
    _, deliverer = _setup(world)
    _notification(world, hook.url())
    app_id = world.app()
    notifier = world.engine.notifier
    assert notifier is not None
    [delivery_id] = notifier.emit(
        NotificationEvent.APP_DOWN,
        application_id=app_id,
        details=EventDetails(
            summary="task exited with code 137 (OOM-killed)",
            error="out of memory",
            facts={"Exit code": "137"},
            last_lines=["starting", "SECRET=top-secret-value", "killed"],
        ),
    )
    assert deliverer.deliver(delivery_id) is not None
    message = hook.wait(1)[0].body["message"]
    assert message.startswith("task exited with code 137 (OOM-killed)")
    assert "Exit code: 137" in message and "Error: out of memory" in message
    assert "SECRET=********" in message and "top-secret-value" not in message
    assert "https://slipway.example.com/ui/" in message


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(world: World) -> None:
    _, deliverer = _setup(world, notify_attempts=3)
    with endpoint(fail_first=100) as hook:
        note = _notification(world, hook.url())
        assert world.engine.run(world.submit(world.app()).deployment.id)
        [delivery] = _deliveries(world)
        first = deliverer.deliver(delivery.id)
        second = deliverer.deliver(delivery.id)
        third = deliverer.deliver(delivery.id)
        assert len(hook.wait(3)) == 3
    assert first is not None and first.retry_in == pytest.approx(0.1)
    assert second is not None and second.retry_in == pytest.approx(0.2)
    assert third is not None and third.retry_in is None and not third.sent
    assert deliverer.deliver(delivery.id) is None, "given up: no fourth send"
    [row] = _deliveries(world)
    assert row.status == "FAILED" and row.attempts == 3
    error = _row(world, note).last_error
    assert error and "500" in error
    assert "tok-7f3a9c2e51" not in error and "127.0.0.1" not in error


def test_a_closed_port_is_an_error_without_the_url_and_a_later_success_clears_it(
    world: World, hook: Endpoint
) -> None:
    _, deliverer = _setup(world)
    with refusing_port() as gone:
        url = f"json://{gone}/hook/secret-path-token"
        note = _notification(world, url)
        app_id = world.app()
        notifier = world.engine.notifier
        assert notifier is not None
        [delivery_id] = notifier.emit(NotificationEvent.RECOVERED, application_id=app_id)
        attempt = deliverer.deliver(delivery_id)
    assert attempt is not None and attempt.retry_in is not None
    error = _row(world, note).last_error
    assert error and "Connection error" in error
    assert "secret-path-token" not in error and gone.split(":")[1] not in error
    with world.db.session() as session:
        row = session.get(Notification, note)
        assert row is not None
        row.url_enc = world.cipher.encrypt_json(hook.url())
    again = deliverer.deliver(delivery_id)  # the retry's queue message
    assert again is not None and again.sent
    assert hook.wait(1)[0].body["title"] == "[Slipway] web: application recovered"
    row = _row(world, note)
    assert row.last_error is None and row.last_sent_at is not None


def test_the_url_is_stored_encrypted(world: World, hook: Endpoint) -> None:
    _setup(world)
    url = hook.url(path="hook/a-token-no-one-may-read")
    _notification(world, url)
    with world.db.session() as session:
        dumped = " ".join(
            str(value)
            for table in ("notifications", "notification_deliveries")
            for row in session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            for value in row
        )
    assert "a-token-no-one-may-read" not in dumped and "json://" not in dumped


def test_a_deployment_ended_as_lost_is_a_failure_told_once(world: World, hook: Endpoint) -> None:
    queue, deliverer = _setup(world)
    _notification(world, hook.url(), events=["DEPLOY_FAILED"])
    dep_id = world.submit(world.app()).deployment.id
    with world.db.session() as session:
        dep = deployments.require(session, dep_id)
        dep.status, dep.pid, dep.worker = "RUNNING", 999_999_999, "elsewhere:1"
        dep.started_at = utcnow() - timedelta(minutes=6)
        dep.heartbeat_at = utcnow() - timedelta(minutes=5)
    for _ in range(2):  # a second sweep (another process's) finds nothing to end
        reap_dead(
            db=world.db,
            bus=world.bus,  # type: ignore[arg-type]
            stale_after=60,
            default_timeout=1800,
            notifier=world.engine.notifier,
        )
    [(delivery_id, _)] = queue.sent
    assert deliverer.deliver(delivery_id) is not None
    message = hook.wait(1)[0].body["message"]
    assert "Error: worker lost: the worker running this deployment (elsewhere:1) stopped" in message
    assert "Status: ERROR" in message and "Duration: 6m" in message


def test_overdue_deliveries_are_sent_again_by_the_watchdog(world: World, hook: Endpoint) -> None:
    queue, _ = _setup(world)
    _notification(world, hook.url())
    notifier = world.engine.notifier
    assert notifier is not None
    [lost] = notifier.emit(NotificationEvent.APP_DOWN, application_id=world.app())
    [fresh] = notifier.emit(NotificationEvent.APP_DOWN, application_id=world.app())
    with world.db.session() as session:
        row = session.get(Delivery, lost)
        assert row is not None
        row.next_attempt_at = utcnow() - timedelta(minutes=2)
    again = RecordingQueue()
    assert resend_overdue(world.db, again, claim_ttl_s=90) == 1  # type: ignore[arg-type]
    assert again.sent == [(lost, 0.0)] and fresh != lost


def test_emit_in_a_callers_transaction_sends_after_its_commit_only(
    world: World, hook: Endpoint
) -> None:
    queue, _ = _setup(world)
    _notification(world, hook.url())
    app_id = world.app()
    notifier = world.engine.notifier
    assert notifier is not None
    with world.db.session(locking=True) as session:
        ids = notifier.emit_in(session, NotificationEvent.APP_DOWN, application_id=app_id)
        assert len(ids) == 1 and queue.sent == [], "nothing is sent before the commit"
    assert queue.sent == [(ids[0], 0.0)]
    with pytest.raises(RuntimeError), world.db.session(locking=True) as session:
        notifier.emit_in(session, NotificationEvent.RECOVERED, application_id=app_id)
        raise RuntimeError("the caller's transaction fails")
    assert len(queue.sent) == 1, "a rolled back event is not sent"
    assert [d.event for d in _deliveries(world)] == ["APP_DOWN"]


def test_retention_forgets_finished_deliveries_after_30_days(world: World, hook: Endpoint) -> None:
    _, deliverer = _setup(world)
    _notification(world, hook.url())
    notifier = world.engine.notifier
    assert notifier is not None
    old, recent, waiting = (
        notifier.emit(NotificationEvent.APP_DOWN, application_id=world.app())[0] for _ in range(3)
    )
    for delivery_id in (old, recent):
        assert deliverer.deliver(delivery_id) is not None
    with world.db.session() as session:
        for delivery_id in (old, waiting):
            row = session.get(Delivery, delivery_id)
            assert row is not None
            row.created_at = utcnow() - timedelta(days=31)
    assert prune_deliveries(world.db) == 1
    assert {d.id for d in _deliveries(world)} == {recent, waiting}, "a PENDING one is kept"


def test_a_service_that_never_answers_times_out(world: World) -> None:
    _, deliverer = _setup(world, notify_timeout=1.0)
    with silent_server() as address:
        note = _notification(world, f"json://{address}/hook/tok-7f3a9c2e51")
        notifier = world.engine.notifier
        assert notifier is not None
        [delivery_id] = notifier.emit(NotificationEvent.APP_DOWN, application_id=world.app())
        started = time.monotonic()
        attempt = deliverer.deliver(delivery_id)
        took = time.monotonic() - started
    assert attempt is not None and not attempt.sent and attempt.retry_in is not None
    assert took < 5, f"a send waited {took:.1f}s with a 1 s timeout"
    error = _row(world, note).last_error
    assert error and "tok-7f3a9c2e51" not in error and address not in error
