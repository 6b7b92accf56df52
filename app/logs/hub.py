"""One process's fan-out: each topic's messages are kept once and read by every subscriber.

Subscribers keep a cursor into the topic's shared list, so a message is stored once however
many follow it, and a subscriber that wakes late takes everything since its cursor in one
batch. A subscriber that falls too far behind is marked ``lagged`` and must resync from the
log file; it never makes the process hold an unbounded backlog.

Wake-ups are paced: a topic wakes its subscribers at most once every ``subscribers /
wakeups_per_second`` seconds (``SLIPWAY_LOG_WAKEUPS_PER_SECOND``), and what was pushed
meanwhile waits for that wake-up. Each wake-up costs every subscriber a trip through the
GraphQL stream and a socket write whatever it carries, so a busy log followed by 1,000
viewers is sent in frames about every third of a second instead of as fast as the event
loop can go (which spent the server's CPU on frames and gave each a few lines); a topic
with few subscribers is woken at once. The lines a wake-up releases are merged into one
chunk, so each subscriber sends them as one frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.logs.bus.base import Bus
from app.logs.messages import Lines, Message, coalesce

WAKEUPS_PER_SECOND = 3000.0  # default of Settings.log_wakeups_per_second
MAX_BACKLOG = 200_000  # lines held for the slowest subscriber (~60 MB) before it resyncs
TRIM_AT = 256  # items: drop what every subscriber has read in slices, not one by one


class _Topic:
    """A topic's recent messages; ``marks[i]`` counts the lines up to and with item i."""

    def __init__(self, name: str, wakeups_per_second: float) -> None:
        self.name = name
        self.items: list[Message] = []
        self.marks: list[int] = []
        self.base = 0  # absolute index of items[0]
        self.base_mark = 0  # lines before items[0]
        self.event = asyncio.Event()
        self.cursors: set[Subscription] = set()
        self.wakeups_per_second = wakeups_per_second
        self.woken = -1e9  # loop time of the last wake-up
        self.released = 0  # absolute index: subscribers take the items before it
        self.timer: asyncio.TimerHandle | None = None  # a wake-up scheduled

    @property
    def end(self) -> int:
        return self.base + len(self.items)

    def push(self, messages: Sequence[Message]) -> None:
        self.trim()  # once per push (O(subscribers)), not once per subscriber read
        total = self.marks[-1] if self.marks else self.base_mark
        for message in messages:
            total += len(message.lines) if isinstance(message, Lines) else 1
            self.marks.append(total)
        self.items.extend(messages)
        if total - self.base_mark > MAX_BACKLOG:
            self._shed(total)
        if self.timer is None:
            loop = asyncio.get_running_loop()
            due = self.woken + len(self.cursors) / self.wakeups_per_second
            if due <= loop.time():
                self.wake()
            else:
                self.timer = loop.call_at(due, self.wake)

    def wake(self) -> None:
        """Every subscriber waiting on this topic takes what was pushed (paced by push)."""
        self.timer = None
        self.woken = asyncio.get_running_loop().time()
        self._merge_unreleased()
        self.released = self.end
        event, self.event = self.event, asyncio.Event()
        event.set()

    def _merge_unreleased(self) -> None:
        """What this wake-up releases (pushed since the last), as few messages as
        ``coalesce`` makes of it: the lines of several pushes reach every subscriber as one
        chunk, so one frame, executed and encoded once for all (app.graphql.sharing).
        Only items past every cursor are merged (a subscriber that joined after a push
        starts at its own position)."""
        start = max([self.released, *(s.pos for s in self.cursors if s.pos > self.released)])
        first = max(start, self.base) - self.base
        if len(self.items) - first < 2:
            return
        merged = coalesce(self.items[first:])
        if len(merged) == len(self.items) - first:
            return
        mark = self.marks[first - 1] if first else self.base_mark
        marks = []
        for message in merged:
            mark += len(message.lines) if isinstance(message, Lines) else 1
            marks.append(mark)
        self.items[first:] = merged
        self.marks[first:] = marks

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _mark_at(self, pos: int) -> int:
        return self.base_mark if pos <= self.base else self.marks[pos - self.base - 1]

    def _shed(self, total: int) -> None:
        for sub in self.cursors:
            if total - self._mark_at(sub.pos) > MAX_BACKLOG // 2:
                sub.lagged = True
                sub.pos = self.end
        self.trim()

    def trim(self) -> None:
        low = min((s.pos for s in self.cursors), default=self.end)
        drop = low - self.base
        if drop > TRIM_AT or (drop and drop == len(self.items)):
            self.base_mark = self._mark_at(low)
            del self.items[:drop]
            del self.marks[:drop]
            self.base = low


class Subscription:
    """A cursor on one topic; ``await next()`` returns every message since the last call."""

    def __init__(self, hub: Hub, topic: _Topic) -> None:
        self._hub = hub
        self._topic = topic
        self.pos = topic.end
        self.lagged = False

    async def next(self, timeout: float | None = None) -> list[Message]:
        """Messages since the previous call; [] on timeout. Check ``lagged`` afterwards."""
        topic = self._topic
        if self.pos >= topic.released:  # pushed since the last wake-up waits for the next
            try:  # asyncio.timeout, not wait_for: no task per wait (~2x cheaper per wake-up)
                async with asyncio.timeout(timeout):
                    await topic.event.wait()
            except TimeoutError:
                return []
        batch = topic.items[self.pos - topic.base : topic.released - topic.base]
        self.pos = topic.released
        return batch  # what everybody has read is trimmed at the next push, once

    async def close(self) -> None:
        await self._hub.release(self)

    @property
    def topic(self) -> str:
        return self._topic.name


class Hub:
    """Receives the bus's messages for this process and fans them out to subscriptions."""

    def __init__(self, bus: Bus, *, wakeups_per_second: float = WAKEUPS_PER_SECOND) -> None:
        self.bus = bus
        self.wakeups_per_second = wakeups_per_second
        self._topics: dict[str, _Topic] = {}

    async def start(self) -> None:
        await self.bus.start(self._deliver)

    async def stop(self) -> None:
        await self.bus.stop()

    def _deliver(self, topic: str, messages: list[Message]) -> None:
        entry = self._topics.get(topic)
        if entry is not None:
            entry.push(coalesce(messages))

    async def subscribe(self, topic: str) -> Subscription:
        """Start receiving ``topic``: every message published after this returns is seen."""
        entry = self._topics.get(topic)
        if entry is None:
            entry = self._topics[topic] = _Topic(topic, self.wakeups_per_second)
            try:
                await self.bus.watch(topic)
            except BaseException:
                if not entry.cursors:  # nobody else joined while we waited: forget it
                    self._topics.pop(topic, None)
                    entry.close()
                raise
        sub = Subscription(self, entry)
        entry.cursors.add(sub)
        return sub

    async def release(self, sub: Subscription) -> None:
        entry = self._topics.get(sub.topic)
        if entry is None:
            return
        entry.cursors.discard(sub)
        if not entry.cursors:
            del self._topics[sub.topic]
            entry.close()
            await self.bus.unwatch(sub.topic)
        else:
            entry.trim()
