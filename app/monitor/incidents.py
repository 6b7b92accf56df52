"""The incident state machine: what one engine observation means for one application.

Pure: no I/O. The watcher turns engine events and task listings into
:class:`Observation` values; :func:`decide` says the application's new health and whether
an incident opens (one message) or ends (RECOVERED). While an incident is open, every
further failure belongs to it, so a crash loop is one message, not one per restart; it
ends only when the tasks have run, healthy, for the recovery period (the watcher checks
that before it reports ``up``). Observations older than the last one applied are dropped,
so events replayed after a restart change nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.types import ApplicationHealth as Health
from app.types import NotificationEvent


class Seen(enum.StrEnum):
    DOWN = "down"  # a task exited, failed or was rejected (detail: exit code, oom, reason, logs)
    FAILING = "failing"  # the health check failed the threshold's number of times in a row
    UP = "up"  # every task runs and is healthy, and has for the recovery period


@dataclass(frozen=True, slots=True)
class Observation:
    seen: Seen
    at: datetime  # when the engine saw it (the event's time, or the listing's)
    deployment_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppState:
    """What the database holds for one application."""

    health: Health
    open_kind: NotificationEvent | None  # the open incident's kind, if one is open
    seen_at: datetime | None  # the last observation applied


@dataclass(frozen=True, slots=True)
class Decision:
    health: Health
    opens: NotificationEvent | None = None  # open an incident of this kind, and send it
    recovers: bool = False  # end the open incident, and send RECOVERED

    @property
    def event(self) -> NotificationEvent | None:
        """The message this decision sends, if any."""
        return NotificationEvent.RECOVERED if self.recovers else self.opens


def decide(state: AppState, obs: Observation) -> Decision | None:
    """The decision for ``obs``, or None when it is older than what was applied."""
    if state.seen_at is not None and obs.at < state.seen_at:
        return None
    is_open = state.open_kind is not None
    if obs.seen is Seen.DOWN:
        return Decision(Health.DOWN, opens=None if is_open else NotificationEvent.APP_DOWN)
    if obs.seen is Seen.FAILING:
        health = Health.DOWN if state.health is Health.DOWN else Health.UNHEALTHY
        return Decision(health, opens=None if is_open else NotificationEvent.HEALTH_CHECK_FAILED)
    return Decision(Health.HEALTHY, recovers=is_open)
