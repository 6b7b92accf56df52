"""Replay + live tail of a deployment's log, with no gap and no duplicate.

The subscription is registered on the hub *before* the file is read, so a line is either in
the file when it is read or arrives on the bus afterwards (or both: duplicates are dropped by
seq). A jump in seq on the bus, or a subscriber shed for lagging, is filled from the file.
The stream ends at the writer's ``End`` marker, or when the deployment is found finished
(covering a writer that died without one): the file is complete then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from app.logs.files import read_after
from app.logs.hub import Hub
from app.logs.messages import End, Lines, Message
from app.logs.writer import logs_topic
from app.types import LogLine

IsFinished = Callable[[], Awaitable[bool]]
REPLAY_BATCH = 2000
IDLE_CHECK = 5.0


class _Cursor:
    def __init__(self, after_seq: int) -> None:
        self.last = after_seq
        self.end: int | None = None

    def take(self, lines: Sequence[LogLine]) -> Sequence[LogLine]:
        """The part of ``lines`` after the cursor (the same object when all of it is new)."""
        if not lines or lines[0].seq == self.last + 1:
            if lines:
                self.last = lines[-1].seq
            return lines
        fresh = [x for x in lines if x.seq > self.last]
        if fresh:
            self.last = fresh[-1].seq
        return fresh

    @property
    def done(self) -> bool:
        return self.end is not None and self.last >= self.end


async def follow(
    *, hub: Hub, path: Path, deployment_id: str, after_seq: int, is_finished: IsFinished
) -> AsyncIterator[Sequence[LogLine]]:
    """Yield batches of lines after ``after_seq``; complete once the log has ended."""
    sub = await hub.subscribe(logs_topic(deployment_id))
    cursor = _Cursor(after_seq)
    try:
        async for batch in _replay(path, cursor):
            yield batch
        if await is_finished():
            async for batch in _replay(path, cursor):
                yield batch
            return
        while not cursor.done:
            messages = await sub.next(timeout=IDLE_CHECK)
            if sub.lagged or not messages:
                sub.lagged = False
                async for batch in _replay(path, cursor):
                    yield batch
                if not messages and await is_finished():
                    async for batch in _replay(path, cursor):
                        yield batch
                    return
            for batch in await _live(messages, cursor, path):
                yield batch
    finally:
        await sub.close()


async def _live(messages: list[Message], cursor: _Cursor, path: Path) -> list[Sequence[LogLine]]:
    out: list[Sequence[LogLine]] = []
    for message in messages:
        if isinstance(message, End):
            cursor.end = message.last_seq
        elif isinstance(message, Lines) and message.lines:
            if message.lines[0].seq > cursor.last + 1:  # a gap: the file has it
                out.extend(await _read_gap(path, cursor, message.lines[0].seq - 1))
            fresh = cursor.take(message.lines)
            if fresh:
                out.append(fresh)
    if cursor.end is not None and cursor.last < cursor.end:
        out.extend(await _read_gap(path, cursor, cursor.end))
    return out


async def _read_gap(path: Path, cursor: _Cursor, upto: int) -> list[Sequence[LogLine]]:
    lines = await run_in_threadpool(read_after, path, cursor.last, upto - cursor.last)
    fresh = cursor.take(lines)
    return [fresh] if fresh else []


async def _replay(path: Path, cursor: _Cursor) -> AsyncIterator[Sequence[LogLine]]:
    lines = await run_in_threadpool(read_after, path, cursor.last)
    for start in range(0, len(lines), REPLAY_BATCH):
        fresh = cursor.take(lines[start : start + REPLAY_BATCH])
        if fresh:
            yield fresh
