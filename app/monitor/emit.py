"""Handing a monitor event on: the one place the notifications are called from.

The incident row is committed first (``sent_at`` null); then, in one transaction, the
row is marked sent (``sent_at``/``recovered_sent_at``, a conditional update only one
process can win) and the emitter is called with that session: ``Notifications`` writes
the notification outbox rows in it (``Notifier.emit_in``), so the mark and the messages
commit together, once. The watcher's tick hands on any incident a crash left unmarked.
Every event is also written to Slipway's log (``log_only``, the emitter without
notifications).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.notify.dispatch import EventDetails, Notifier
from app.types import NotificationEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorMessage:
    event: NotificationEvent
    application_id: str
    app_name: str
    deployment_id: str | None
    incident_id: str
    at: datetime
    # exit_code, oom_killed, reason, engine_error, logs (masked), output, failing_streak
    detail: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line saying what happened (no log lines)."""
        d = self.detail
        if self.event is NotificationEvent.RECOVERED:
            return f"{self.app_name} runs healthy again"
        if self.event is NotificationEvent.HEALTH_CHECK_FAILED:
            return f"{self.app_name}: {d.get('failing_streak')} health checks failed in a row" + (
                f": {d['output']}" if d.get("output") else ""
            )
        why = [str(d.get("reason") or "its task ended")]
        if d.get("exit_code") is not None:
            why.append(f"exit code {d['exit_code']}")
        if d.get("oom_killed"):
            why.append("killed for lack of memory (OOM)")
        return f"{self.app_name} is down: " + ", ".join(why)

    def details(self) -> EventDetails:
        """What the notification's message says beyond the rows."""
        d = self.detail
        facts: dict[str, str] = {}
        if d.get("exit_code") is not None:
            facts["Exit code"] = str(d["exit_code"])
        if self.event is NotificationEvent.APP_DOWN:
            facts["OOM-killed"] = "yes" if d.get("oom_killed") else "no"
        if d.get("rejected"):
            facts["Rejected by the scheduler"] = str(d.get("reason") or "")
        if d.get("failing_streak"):
            facts["Failed health checks in a row"] = str(d["failing_streak"])
        if d.get("task_id"):
            facts["Task"] = str(d["task_id"])
        error = d.get("engine_error") or d.get("reason") or d.get("output")
        return EventDetails(
            summary=self.summary(),
            error=str(error) if error and self.event is not NotificationEvent.RECOVERED else None,
            facts=facts,
            last_lines=[str(line) for line in d.get("logs") or []],
        )


Emitter = Callable[[Session, MonitorMessage], None]


def log_only(session: Session, message: MonitorMessage) -> None:  # noqa: ARG001
    """Write the event to Slipway's log (every emitter does; this one only that)."""
    log.warning("monitor %s: %s", message.event.value, message.summary())


class Notifications:
    """The emitter of a process with notifications: the log line, then the event queued
    for every notification that wants it, in the caller's transaction."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def __call__(self, session: Session, message: MonitorMessage) -> None:
        log_only(session, message)
        self.notifier.emit_in(
            session,
            message.event,
            application_id=message.application_id,
            deployment_id=message.deployment_id,
            details=message.details(),
        )
