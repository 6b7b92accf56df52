"""The only place that chooses and sets the Dramatiq broker."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from app.settings import Settings


def make_broker(settings: Settings) -> dramatiq.Broker:
    """Redis in distributed mode; an in-memory broker (worker in-process) in embedded mode."""
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = RedisBroker(url=settings.redis_url, namespace="slipway")  # type: ignore[no-untyped-call]
    else:
        broker = StubBroker()
    dramatiq.set_broker(broker)
    return broker
