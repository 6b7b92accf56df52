"""Delivering one outbox row: claim it, send it through apprise, record how it went.

Runs in a queue worker thread (``queue/notifications.py``), never in a deployment's.
A failed send is tried again after ``SLIPWAY_NOTIFY_BACKOFF`` seconds, doubled each time
up to ``SLIPWAY_NOTIFY_BACKOFF_MAX``, ``SLIPWAY_NOTIFY_ATTEMPTS`` times in all; each try
records ``last_error`` (masked: never the URL or a part of it) on the row and on its
notification, a success ``last_sent_at`` (and clears ``last_error``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from app.crypto import Cipher
from app.db.base import utcnow
from app.db.repos import notifications as repo
from app.db.session import Database
from app.notify.transport import SendFailed, Transport, url_masker
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """How one call went: ``retry_in`` seconds until the next try, None when there is none."""

    sent: bool
    retry_in: float | None = None
    error: str | None = None


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed send."""
    return float(min(settings.notify_backoff_max, settings.notify_backoff * 2 ** (attempts - 1)))


def read_url(cipher: Cipher, token: str) -> str:
    value = cipher.decrypt_json(token, "")
    return value if isinstance(value, str) else ""


class Deliverer:
    def __init__(
        self, *, db: Database, cipher: Cipher, settings: Settings, transport: Transport
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.settings = settings
        self.transport = transport

    @property
    def claim_ttl(self) -> timedelta:
        """A claim older than this is a sender that died mid-send."""
        return timedelta(seconds=self.settings.notify_timeout * 3 + 60)

    def deliver(self, delivery_id: str) -> Attempt | None:
        """One attempt; None when there was nothing to do (sent, given up, deleted, or
        another sender holds it)."""
        with self.db.session() as session:
            if not repo.claim(session, delivery_id, stale_before=utcnow() - self.claim_ttl):
                return None
        with self.db.session() as session:
            row = repo.delivery(session, delivery_id)
            target = repo.get(session, row.notification_id) if row else None
            if row is None or target is None:
                return None
            url = read_url(self.cipher, target.url_enc)
            title, body, attempts = row.title, row.body, row.attempts
        try:
            self.transport.send(url, title=title, body=body, timeout=self.settings.notify_timeout)
        except SendFailed as exc:
            error: str | None = url_masker(url)(str(exc))
        except Exception as exc:  # a bug of ours or apprise's: the row must still move on
            log.exception("notification delivery %s", delivery_id)
            error = f"internal error: {exc.__class__.__name__}"
        else:
            error = None
        return self._record(delivery_id, attempts, error)

    def _record(self, delivery_id: str, attempts: int, error: str | None) -> Attempt:
        now = utcnow()
        retry_in = None
        with self.db.session() as session:
            row = repo.delivery(session, delivery_id)
            target = repo.get(session, row.notification_id) if row else None
            if row is not None:
                row.claimed_at = None
                if error is None:
                    row.status, row.sent_at, row.last_error = repo.SENT, now, None
                elif attempts >= self.settings.notify_attempts:
                    row.status, row.last_error = repo.FAILED, error
                else:
                    retry_in = backoff(self.settings, attempts)
                    row.last_error = error
                    row.next_attempt_at = now + timedelta(seconds=retry_in)
            if target is not None:
                if error is None:
                    target.last_sent_at, target.last_error = now, None
                else:
                    target.last_error = error
        if error is not None:
            again = f"again in {retry_in:g}s" if retry_in is not None else "given up"
            log.warning(
                "notification delivery %s: attempt %d failed (%s): %s",
                delivery_id,
                attempts,
                again,
                error,
            )
        return Attempt(sent=error is None, retry_in=retry_in, error=error)

    def test(self, notification_id: str) -> Attempt:
        """Send a test message now, from the calling thread (``testNotification``)."""
        with self.db.session() as session:
            target = repo.require(session, notification_id)
            url, name = read_url(self.cipher, target.url_enc), target.name
        title = "[Slipway] test notification"
        body = f"This is a test of the notification {name!r}: it reaches you."
        if self.settings.public_url:
            body += f"\n\n{self.settings.public_url}/ui/"
        try:
            self.transport.send(url, title=title, body=body, timeout=self.settings.notify_timeout)
        except SendFailed as exc:
            error: str | None = url_masker(url)(str(exc))
        except Exception as exc:
            log.exception("test of notification %s", notification_id)
            error = f"internal error: {exc.__class__.__name__}"
        else:
            error = None
        with self.db.session() as session:
            row = repo.get(session, notification_id)
            if row is not None:
                if error is None:
                    row.last_sent_at, row.last_error = utcnow(), None
                else:
                    row.last_error = error
        return Attempt(sent=error is None, error=error)
