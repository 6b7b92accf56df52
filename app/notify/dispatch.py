"""Emitting an event: one outbox row per notification that wants it, then a queue message.

:meth:`Notifier.emit` is what the engine (a deployment ends) and the runtime monitor (an
application goes down, fails its health checks, recovers) call. It returns at once: it
writes the messages to ``notification_deliveries`` and hands their ids to the queue; the
sending happens in a queue worker (``deliver.py``). It never raises: a notification that
cannot be written is logged and the caller carries on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.event import listen as event_listen
from sqlalchemy.orm import Session

from app.crypto import Cipher
from app.db.models import Application, Deployment, NotificationDelivery
from app.db.repos import applications, deployments
from app.db.repos import notifications as repo
from app.db.session import Database
from app.masking import MIN_ENV_SECRET, Masker
from app.notify.message import LAST_LINES, DeploymentFacts, MessageInput, render
from app.settings import Settings
from app.types import NotificationEvent

log = logging.getLogger(__name__)
TAIL_BYTES = 64 * 1024
_AFTER_COMMIT = "slipway.notify.after_commit"


def _forget(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


class DeliveryQueue(Protocol):
    """Where delivery ids go (``queue/notifications.py``: a Dramatiq actor)."""

    def send(self, delivery_id: str, delay_s: float = 0.0) -> None: ...


@dataclass(frozen=True)
class EventDetails:
    """What the caller knows beyond the rows. Every text is masked with the application's
    secrets (env, build args and secrets) before it is stored, so a container's log lines
    may be given as they are."""

    summary: str | None = None  # one sentence: what happened ("task exited with code 137")
    error: str | None = None  # why, for failures
    facts: Mapping[str, str] = field(default_factory=dict)  # "Exit code": "137", "Node": …
    last_lines: Sequence[str] = ()  # the last log lines (a container's, for APP_DOWN)


class Notifier:
    """One per process; safe from any thread."""

    def __init__(
        self, *, db: Database, cipher: Cipher, settings: Settings, queue: DeliveryQueue | None
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.settings = settings
        self.queue = queue

    def emit(
        self,
        event: NotificationEvent,
        *,
        application_id: str,
        deployment_id: str | None = None,
        details: EventDetails | None = None,
    ) -> list[str]:
        """Queue ``event`` for every notification that wants it for this application; the
        ids of the deliveries queued ([] when none wants it). With ``deployment_id`` the
        message names the deployment (trigger, commit, duration, its error and, for a
        failure, its log's last lines) and links to it when SLIPWAY_PUBLIC_URL is set."""
        try:
            with self.db.session() as session:
                ids = self._write(session, event, application_id, deployment_id, details)
        except Exception:
            log.exception("notification %s for application %s not queued", event, application_id)
            return []
        for delivery_id in ids:
            self._send(delivery_id)
        return ids

    def emit_in(
        self,
        session: Session,
        event: NotificationEvent,
        *,
        application_id: str,
        deployment_id: str | None = None,
        details: EventDetails | None = None,
    ) -> list[str]:
        """:meth:`emit` inside the caller's transaction (the runtime monitor's, which opens
        or ends the incident): the rows are written in a savepoint of ``session`` and their
        queue messages sent once it commits; a rollback takes them back, nothing is sent.
        Never raises (a failure here rolls back only the savepoint)."""
        try:
            with session.begin_nested():
                ids = self._write(session, event, application_id, deployment_id, details)
        except Exception:
            log.exception("notification %s for application %s not queued", event, application_id)
            return []
        if ids:
            waiting: list[str] | None = session.info.get(_AFTER_COMMIT)
            if waiting is None:
                waiting = session.info[_AFTER_COMMIT] = []
                event_listen(session, "after_commit", self._after_commit, once=True)
                event_listen(session, "after_rollback", _forget, once=True)
            waiting.extend(ids)
        return ids

    def _after_commit(self, session: Session) -> None:
        for delivery_id in session.info.pop(_AFTER_COMMIT, None) or []:
            self._send(delivery_id)

    def _send(self, delivery_id: str) -> None:
        if self.queue is None:
            return
        try:
            self.queue.send(delivery_id)
        except Exception as exc:  # the row is committed: the watchdog sends it again
            log.warning(
                "notification delivery %s queued, its message not sent (%s)", delivery_id, exc
            )

    def _write(
        self,
        session: Session,
        event: NotificationEvent,
        application_id: str,
        deployment_id: str | None,
        details: EventDetails | None,
    ) -> list[str]:
        wanted = repo.matching(session, event.value, application_id)
        if not wanted:
            return []
        app = applications.get(session, application_id)
        dep = deployments.get(session, deployment_id) if deployment_id else None
        mask = self._masker(app)
        details = details or EventDetails()
        lines = list(details.last_lines)
        if dep is not None and not lines and event is NotificationEvent.DEPLOY_FAILED:
            lines = tail(Path(dep.log_path), LAST_LINES)
        link = None
        if self.settings.public_url and dep is not None:
            link = f"{self.settings.public_url}/ui/deployments/{dep.id}"
        elif self.settings.public_url:
            link = f"{self.settings.public_url}/ui/"
        title, body = render(
            MessageInput(
                event=event,
                application_name=app.name if app else None,
                app_name=app.app_name if app else None,
                deployment=_facts(dep),
                summary=details.summary,
                error=details.error,
                facts=dict(details.facts),
                last_lines=lines,
                link=link,
            )
        )
        title, body = mask(title), mask(body)
        ids = []
        for row in wanted:
            delivery = repo.add_delivery(
                session,
                NotificationDelivery(
                    notification_id=row.id,
                    event=event.value,
                    application_id=application_id,
                    deployment_id=deployment_id,
                    title=title,
                    body=body,
                ),
            )
            ids.append(delivery.id)
        return ids

    def _masker(self, app: Application | None) -> Masker:
        if app is None:
            return Masker(())
        env = self.cipher.decrypt_json(app.env_enc, {})
        build_secrets = self.cipher.decrypt_json(app.build_secrets_enc, {})
        values: list[str] = []
        for held in (env, build_secrets):
            if isinstance(held, dict):
                values += [str(v) for v in held.values()]
        values += applications.build_arg_values(app, self.cipher).values()
        return Masker(values, min_length=MIN_ENV_SECRET)


def _facts(dep: Deployment | None) -> DeploymentFacts | None:
    if dep is None:
        return None
    return DeploymentFacts(
        id=dep.id,
        title=dep.title,
        trigger=dep.trigger,
        status=dep.status,
        commit_sha=dep.commit_sha,
        started_at=dep.started_at,
        finished_at=dep.finished_at,
        error=dep.error_message,
    )


def tail(path: Path, count: int) -> list[str]:
    """The messages of a log file's last ``count`` lines (already masked by its writer),
    reading only its last 64 KiB."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            raw = fh.read()
    except OSError:
        return []
    out: list[str] = []
    for line in raw.decode("utf-8", errors="replace").splitlines()[-count - 1 :]:
        try:
            entry = json.loads(line)
            message = entry[4]
        except (ValueError, TypeError, IndexError, KeyError):
            continue  # the first, cut line, or a torn last one
        if isinstance(message, str):
            out.append(message)
    return out[-count:]
