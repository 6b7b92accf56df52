"""Topic names and the 'row changed' announcements subscribers reload on."""

from __future__ import annotations

from app.logs.bus.base import Bus
from app.logs.messages import Changed


def deployment_topic(deployment_id: str) -> str:
    return f"deployment:{deployment_id}"


def application_topic(application_id: str) -> str:
    return f"application:{application_id}"


def announce(bus: Bus, *, deployment_id: str, application_id: str, status: str | None) -> None:
    """Tell subscribers that a deployment (and so its application) changed."""
    bus.publish(deployment_topic(deployment_id), Changed(status))
    bus.publish(application_topic(application_id), Changed(status))
