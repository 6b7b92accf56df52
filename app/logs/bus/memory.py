"""The in-process bus of embedded mode: worker threads publish, the event loop delivers."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

from app.logs.bus.base import Deliver
from app.logs.messages import Message

FLUSH_DELAY = 0.01  # seconds: a busy writer wakes the event loop at most 100 times a second


class MemoryBus:
    """Publishes are queued under a lock; one loop callback drains them in batches.

    The drain runs ``FLUSH_DELAY`` after the first publish of a batch, not at once: a
    writer producing thousands of lines a second would otherwise wake the event loop (and
    every follower) once per line and spend its time handing the GIL back and forth.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[Message]] = defaultdict(list)
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None

    def publish(self, topic: str, message: Message) -> None:
        with self._lock:
            if self._loop is None:
                return  # nobody in this process listens yet
            self._pending[topic].append(message)
            if self._scheduled:
                return
            self._scheduled = True
            loop = self._loop
        try:
            if _running_loop() is loop:
                loop.call_later(FLUSH_DELAY, self._drain)
            else:
                loop.call_soon_threadsafe(loop.call_later, FLUSH_DELAY, self._drain)
        except RuntimeError:  # loop closed during shutdown
            with self._lock:
                self._scheduled = False

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
            self._scheduled = False
        if self._deliver is not None:
            for topic, messages in pending.items():
                self._deliver(topic, messages)

    async def start(self, deliver: Deliver) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._deliver = deliver

    async def watch(self, topic: str) -> None:  # noqa: ARG002 - every topic is delivered
        return None

    async def unwatch(self, topic: str) -> None:  # noqa: ARG002
        return None

    def close(self) -> None:
        """Nothing to flush: delivery is in-process."""

    async def stop(self) -> None:
        with self._lock:
            self._loop = None
            self._deliver = None
            self._pending.clear()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
