"""Choosing the bus: Redis in distributed mode, in-process otherwise."""

from __future__ import annotations

from app.logs.bus.base import Bus
from app.logs.bus.memory import MemoryBus
from app.logs.bus.redis import RedisBus
from app.settings import Settings


def make_bus(settings: Settings) -> Bus:
    return RedisBus(settings.redis_url) if settings.redis_url else MemoryBus()
