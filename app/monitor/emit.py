"""Handing a monitor event on: the one place the notifications are called from.

The incident row is committed first (``sent_at`` null); then the row is marked sent
(``sent_at``/``recovered_sent_at``, a conditional update only one process can win) and
``emit`` is called. The watcher's tick hands on any incident a crash left unmarked, so
an event is handed on once, never twice (a crash between the mark and the call loses
that one message). Until the notifications (``app/notify``) are on main it records the
event in the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.types import MonitorEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorMessage:
    event: MonitorEvent
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
        if self.event is MonitorEvent.RECOVERED:
            return f"{self.app_name} runs healthy again"
        if self.event is MonitorEvent.HEALTH_CHECK_FAILED:
            return f"{self.app_name}: {d.get('failing_streak')} health checks failed in a row" + (
                f": {d['output']}" if d.get("output") else ""
            )
        why = [str(d.get("reason") or "its task ended")]
        if d.get("exit_code") is not None:
            why.append(f"exit code {d['exit_code']}")
        if d.get("oom_killed"):
            why.append("killed for lack of memory (OOM)")
        return f"{self.app_name} is down: " + ", ".join(why)


Emitter = Callable[[MonitorMessage], None]


def emit(message: MonitorMessage) -> None:
    """The default emitter: the notifications, once they exist; the log meanwhile."""
    log.warning("monitor %s: %s", message.event.value, message.summary())
