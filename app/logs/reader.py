"""Replay + live tail of a deployment's log, with no gap and no duplicate.

The subscription is registered on the hub *before* the file is read, so a line is either in
the file when it is read or arrives on the bus afterwards (or both: duplicates are dropped by
seq). A jump in seq on the bus, or a subscriber shed for lagging, is filled from the file.
The stream ends at the writer's ``End`` marker, or when the deployment is found finished
(covering a writer that died without one): the file is complete then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from app.logs.files import read_from
from app.logs.hub import Hub
from app.logs.messages import End, Lines, Message
from app.logs.writer import logs_topic
from app.types import LogLine

IsFinished = Callable[[], Awaitable[bool]]
REPLAY_BATCH = 2000
IDLE_CHECK = 5.0


class _Cursor:
    def __init__(self, path: Path, after_seq: int) -> None:
        self.path = path
        self.last = after_seq
        self.end: int | None = None
        self.offset = 0  # in the file, before the first line not yet read from it

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
    cursor = _Cursor(path, after_seq)
    try:
        async for batch in _replay(cursor):
            yield batch
        if await is_finished():
            async for batch in _replay(cursor):
                yield batch
            return
        while not cursor.done:
            messages = await sub.next(timeout=IDLE_CHECK)
            if sub.lagged or not messages:
                sub.lagged = False
                async for batch in _replay(cursor):
                    yield batch
                if not messages and await is_finished():
                    async for batch in _replay(cursor):
                        yield batch
                    return
            for batch in await _live(messages, cursor):
                yield batch
    finally:
        await sub.close()


async def _live(messages: list[Message], cursor: _Cursor) -> list[Sequence[LogLine]]:
    out: list[Sequence[LogLine]] = []
    for message in messages:
        if isinstance(message, End):
            cursor.end = message.last_seq
        elif isinstance(message, Lines) and message.lines:
            if message.lines[0].seq > cursor.last + 1:  # a gap: the file has it
                out.extend([b async for b in _replay(cursor, upto=message.lines[0].seq - 1)])
            fresh = cursor.take(message.lines)
            if fresh:
                out.append(fresh)
    if cursor.end is not None and cursor.last < cursor.end:
        out.extend([b async for b in _replay(cursor, upto=cursor.end)])
    return out


async def _replay(cursor: _Cursor, upto: int | None = None) -> AsyncIterator[Sequence[LogLine]]:
    """Lines after the cursor from the file, in bounded batches (up to ``upto``)."""
    while upto is None or cursor.last < upto:
        limit = REPLAY_BATCH if upto is None else min(REPLAY_BATCH, upto - cursor.last)
        lines, cursor.offset = await run_in_threadpool(
            partial(
                read_from, cursor.path, offset=cursor.offset, after_seq=cursor.last, limit=limit
            )
        )
        fresh = cursor.take(lines)
        if fresh:
            yield fresh
        if len(lines) < limit:
            return
