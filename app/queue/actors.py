"""The deployment actor. Messages carry only an id; the database row is the truth."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import dramatiq

log = logging.getLogger(__name__)

QUEUE_NAME = "deployments"
SIX_HOURS_MS = 6 * 3600 * 1000

Runner = Callable[[str], None]


class _Slot:
    """What the actor calls; bound at worker boot, empty in an API-only process."""

    def __init__(self) -> None:
        self.runner: Runner | None = None

    def __call__(self, deployment_id: str) -> None:
        if self.runner is None:
            raise RuntimeError("this process runs no worker; deployments run in `slipway worker`")
        self.runner(deployment_id)


@dataclass
class DeploymentQueue:
    """Sends 'look at deployment N' messages; a lost or duplicate message is harmless."""

    broker: dramatiq.Broker
    actor: dramatiq.Actor  # type: ignore[type-arg]
    slot: _Slot

    def send(self, deployment_id: str) -> None:
        self.actor.send(deployment_id)

    def send_at(self, deployment_id: str, when: datetime) -> None:
        """Deliver at ``when`` (the watchdog promotes due rows too, should this be lost)."""
        delay_ms = max(0, int((when - datetime.now(UTC)).total_seconds() * 1000))
        self.actor.send_with_options(args=(deployment_id,), delay=delay_ms)

    def bind(self, runner: Runner) -> None:
        self.slot.runner = runner


def declare(broker: dramatiq.Broker) -> DeploymentQueue:
    """Declare the actor on ``broker``. No retries: a failed deployment is an ERROR row."""
    slot = _Slot()
    actor = dramatiq.Actor(
        slot,
        broker=broker,
        actor_name="run_deployment",
        queue_name=QUEUE_NAME,
        priority=0,
        options={"max_retries": 0, "time_limit": SIX_HOURS_MS},
    )
    return DeploymentQueue(broker=broker, actor=actor, slot=slot)
