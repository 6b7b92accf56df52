"""The text of a notification: a title and a plain-text body, secrets already masked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.types import NotificationEvent

LAST_LINES = 20  # log lines a failure message ends with
LINE_CHARS = 500  # each cut to this
TEXT_CHARS = 2000  # an error or summary cut to this

HEADLINES = {
    NotificationEvent.DEPLOY_SUCCEEDED: "deployment succeeded",
    NotificationEvent.DEPLOY_FAILED: "deployment failed",
    NotificationEvent.APP_DOWN: "application down",
    NotificationEvent.HEALTH_CHECK_FAILED: "health check failing",
    NotificationEvent.RECOVERED: "application recovered",
}
FAILURES = frozenset(
    {
        NotificationEvent.DEPLOY_FAILED,
        NotificationEvent.APP_DOWN,
        NotificationEvent.HEALTH_CHECK_FAILED,
    }
)


@dataclass(frozen=True)
class DeploymentFacts:
    id: str
    title: str
    trigger: str
    status: str
    commit_sha: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class MessageInput:
    event: NotificationEvent
    application_name: str | None
    app_name: str | None  # the Swarm service name
    deployment: DeploymentFacts | None = None
    summary: str | None = None
    error: str | None = None
    facts: Mapping[str, str] = field(default_factory=dict)
    last_lines: Sequence[str] = ()
    link: str | None = None


def duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(data: MessageInput) -> tuple[str, str]:
    """(title, body) of the message."""
    who = data.application_name or data.app_name or "an application"
    title = f"[Slipway] {who}: {HEADLINES[data.event]}"
    lines: list[str] = []
    if data.summary:
        lines += [_cut(data.summary, TEXT_CHARS), ""]
    name = data.application_name or "?"
    if data.app_name and data.app_name != data.application_name:
        name += f" (service {data.app_name})"
    lines.append(f"Application: {name}")
    dep = data.deployment
    if dep is not None:
        lines.append(f"Deployment: {dep.id} ({_cut(dep.title, 200)})")
        lines.append(f"Trigger: {dep.trigger}")
        lines.append(f"Commit: {dep.commit_sha[:12] if dep.commit_sha else 'none'}")
        took = duration(dep.started_at, dep.finished_at)
        if took:
            lines.append(f"Duration: {took}")
        lines.append(f"Status: {dep.status}")
    for key, value in data.facts.items():
        lines.append(f"{key}: {_cut(value, 300)}")
    error = data.error or (dep.error if dep is not None else None)
    if error and data.event in FAILURES:
        lines += ["", f"Error: {_cut(error, TEXT_CHARS)}"]
    if data.last_lines and data.event in FAILURES:
        shown = list(data.last_lines)[-LAST_LINES:]
        lines += ["", f"Last {len(shown)} log lines:"]
        lines += [_cut(line.rstrip("\n"), LINE_CHARS) for line in shown]
    if data.link:
        lines += ["", data.link]
    return title, "\n".join(lines)
