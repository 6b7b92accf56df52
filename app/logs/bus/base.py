"""The bus protocol: publish from any thread, deliver into one process's event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.logs.messages import Message

Deliver = Callable[[str, list[Message]], None]


class Bus(Protocol):
    def publish(self, topic: str, message: Message) -> None:
        """Send ``message`` on ``topic``; safe from any thread, never blocks long."""
        ...

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering: ``deliver(topic, messages)`` runs in the calling event loop."""
        ...

    async def watch(self, topic: str) -> None:
        """This process now has a subscriber to ``topic``."""
        ...

    async def unwatch(self, topic: str) -> None:
        """This process no longer has a subscriber to ``topic``."""
        ...

    async def stop(self) -> None: ...

    def close(self) -> None:
        """Deliver what was published (bounded wait); for processes that only publish."""
        ...
