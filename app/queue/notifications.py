"""The notification actor: ``send_notification(delivery_id)`` on its own queue, sent by
its own worker threads, so a long deployment never holds up a message nor a slow service
a deployment. Retries are ours (``notify/deliver.py`` says when), not Dramatiq's."""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq

from app.db.base import utcnow
from app.db.repos import notifications as repo
from app.db.session import Database
from app.notify.deliver import Attempt

log = logging.getLogger(__name__)

QUEUE_NAME = "notifications"
TIME_LIMIT_MS = 5 * 60 * 1000
OVERDUE_GRACE_S = 30.0  # a PENDING row this late had its message lost
KEEP_FINISHED_DAYS = 30  # SENT and FAILED deliveries are forgotten after this

Deliver = Callable[[str], Attempt | None]


class NotificationQueue:
    """Sends "deliver N" messages; a lost or duplicate one is harmless (the row decides)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self._deliver: Deliver | None = None
        self.actor: dramatiq.Actor = dramatiq.Actor(  # type: ignore[type-arg]
            self._run,
            broker=broker,
            actor_name="send_notification",
            queue_name=QUEUE_NAME,
            priority=10,
            options={"max_retries": 0, "time_limit": TIME_LIMIT_MS},
        )

    def send(self, delivery_id: str, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            self.actor.send_with_options(args=(delivery_id,), delay=int(delay_s * 1000))
        else:
            self.actor.send(delivery_id)

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def _run(self, delivery_id: str) -> None:
        if self._deliver is None:
            raise RuntimeError("this process sends no notifications; `slipway worker` does")
        attempt = self._deliver(delivery_id)
        if attempt is not None and attempt.retry_in is not None:
            self.send(delivery_id, attempt.retry_in)


def declare_notifications(broker: dramatiq.Broker) -> NotificationQueue:
    return NotificationQueue(broker)


def resend_overdue(db: Database, queue: NotificationQueue, *, claim_ttl_s: float) -> int:
    """The watchdog's part: send again the PENDING deliveries whose message was lost."""
    from datetime import timedelta

    with db.session() as session:
        ids = repo.overdue(
            session,
            grace=OVERDUE_GRACE_S,
            stale_before=utcnow() - timedelta(seconds=claim_ttl_s),
        )
    for delivery_id in ids:
        queue.send(delivery_id)
    return len(ids)


def prune_deliveries(db: Database, *, days: float = KEEP_FINISHED_DAYS) -> int:
    """Retention's part: forget SENT and FAILED deliveries older than ``days``."""
    from datetime import timedelta

    with db.session() as session:
        return repo.prune_finished(session, older_than=utcnow() - timedelta(days=days))
