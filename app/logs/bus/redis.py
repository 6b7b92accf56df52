"""The Redis bus of distributed mode: one stream per topic, one writer thread, one reader task.

Publishing only queues the message: a daemon thread drains the queue and appends each message
to the stream ``slipway:stream:<topic>`` (XADD in pipelined batches, trimmed to about
``MAXLEN`` entries, expiring ``TTL`` seconds after the last write). While Redis is down the
thread keeps the unsent messages, in order, and retries with backoff; past ``MAX_BUFFER`` it
drops the oldest (a log follower fills gaps from the log file). ``publish`` never blocks on
Redis and never raises.

Each process reads with one task: ``XREAD BLOCK`` over every watched stream from the last id
it has seen, delivering each stream's new entries as one batch. ``watch`` records the
stream's newest id before it returns, so everything published after it is delivered and
nothing before; it then wakes the reader through a private stream. After a read error the
reader backs off, reconnects and goes on from the recorded ids, reading from the start any
stream that came back with a newest id below ours (Redis restarted and the clock went back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.errors import Unavailable
from app.logs.bus.base import Deliver
from app.logs.messages import Message, coalesce, decode, encode
from app.metrics import instruments as metrics

log = logging.getLogger(__name__)

STREAM_PREFIX = "slipway:stream:"
WAKE_PREFIX = "slipway:wake:"
MAXLEN = 10_000  # entries kept per stream (approximately)
TTL = 24 * 3600  # seconds a stream lives after its last write
WAKE_TTL = 300  # seconds the private wake stream outlives its last watch
MAX_BUFFER = 100_000  # unsent messages held while Redis is down
BATCH = 5000  # messages per pipeline
FLUSH_DELAY = 0.01  # seconds to collect a batch after the first message (like MemoryBus)
BLOCK_MS = 1000
READ_COUNT = 1000  # entries per stream per read
BACKOFF_START, BACKOFF_MAX = 0.1, 2.0
CLOSE_TIMEOUT = 2.0  # seconds stop() waits for the queue to drain
FIELD = b"m"
ERRORS = (RedisError, OSError)


class _Publisher:
    """The queue and the thread that writes it to Redis, in order, retrying through outages."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, Message]] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropping = False  # the overflow warning was logged in this outage

    def put(self, topic: str, message: Message) -> None:
        with self._cond:
            if self._closed:
                return
            self._queue.append((topic, message))
            self._trim()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="redis-bus-publisher")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float) -> None:
        """Send what is queued (waiting at most ``timeout`` seconds), then stop the thread."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("Redis bus: %d messages still unsent at close", len(self._queue))
        self._redis.close()

    def _trim(self) -> None:
        """Drop the oldest messages past MAX_BUFFER; called with the lock held."""
        if len(self._queue) <= MAX_BUFFER:
            return
        while len(self._queue) > MAX_BUFFER:
            self._queue.popleft()
        if not self._dropping:
            self._dropping = True
            log.warning("Redis bus: over %d unsent messages, dropping the oldest", MAX_BUFFER)

    def _run(self) -> None:
        delay = BACKOFF_START
        while (batch := self._take()) is not None:
            try:
                self._send(batch)
            except ERRORS as exc:
                self._put_back(batch)
                if not self._retry_after(exc, delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except Exception:  # a bug must not kill the thread and stall every publish
                log.exception("Redis bus: dropping %d messages that could not be sent", len(batch))
            if delay > BACKOFF_START:
                log.info("Redis bus: publishing again")
            delay = BACKOFF_START
            with self._cond:
                self._dropping = False

    def _take(self) -> list[tuple[str, Message]] | None:
        """The next batch, waiting for one; None once closed and drained."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._closed:  # let a burst gather: fewer, larger stream entries
                self._cond.wait_for(lambda: self._closed, FLUSH_DELAY)
            count = min(len(self._queue), BATCH)
            return [self._queue.popleft() for _ in range(count)] or None

    def _send(self, batch: list[tuple[str, Message]]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        by_topic: dict[str, list[Message]] = {}
        for topic, message in batch:
            by_topic.setdefault(topic, []).append(message)
        for topic, messages in by_topic.items():
            key = STREAM_PREFIX + topic
            # Consecutive lines travel as one entry: a stream of MAXLEN entries then holds
            # minutes of a busy log, and a reader gets them in a few large batches.
            for message in coalesce(messages):
                pipe.xadd(key, {FIELD: encode(message)}, maxlen=MAXLEN, approximate=True)
            pipe.expire(key, TTL)
        failures = [r for r in pipe.execute(raise_on_error=False) if isinstance(r, Exception)]
        if failures:  # a command Redis refused (say, a key of another type): retrying won't help
            log.error("Redis bus: %d commands failed, first: %s", len(failures), failures[0])

    def _put_back(self, batch: list[tuple[str, Message]]) -> None:
        with self._cond:
            self._queue.extendleft(reversed(batch))
            self._trim()

    def _retry_after(self, exc: Exception, delay: float) -> bool:
        """Wait ``delay`` before the next try; False when closed meanwhile (give up)."""
        if delay == BACKOFF_START:
            log.warning("Redis bus: publishing failed (%s); retrying until Redis answers", exc)
        with self._cond:
            if self._closed:
                log.warning("Redis bus: closed while Redis is down; %d unsent", len(self._queue))
                return False
            self._cond.wait_for(lambda: self._closed, delay)
            return True


class RedisBus:
    """Topics are streams ``slipway:stream:<topic>``; only watched topics are read."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher = _Publisher(url)
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._ids: dict[str, str] = {}  # watched stream key -> last id seen
        self._wake = WAKE_PREFIX + uuid.uuid4().hex
        self._wake_id = "0-0"

    def publish(self, topic: str, message: Message) -> None:
        self._publisher.put(topic, message)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Flush and stop the publisher (for processes that only publish, from sync code)."""
        self._publisher.close(timeout)

    async def start(self, deliver: Deliver) -> None:
        self._task = asyncio.create_task(self._read(deliver), name="redis-bus-reader")

    async def watch(self, topic: str) -> None:
        key = STREAM_PREFIX + topic
        if key in self._ids:
            return
        try:
            self._ids[key] = await self._newest_id(key)
        except ERRORS as exc:
            raise Unavailable(f"Redis bus: cannot watch {topic!r}: {exc}") from exc
        try:  # only saves the reader waiting out its current block for the new stream
            await self._redis().xadd(self._wake, {FIELD: b""}, maxlen=10, approximate=True)
            await self._redis().expire(self._wake, WAKE_TTL)
        except ERRORS as exc:
            log.debug("Redis bus: could not wake the reader: %s", exc)

    async def unwatch(self, topic: str) -> None:
        self._ids.pop(STREAM_PREFIX + topic, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.close)
        if self._client is not None:
            with contextlib.suppress(*ERRORS, TimeoutError):
                await asyncio.wait_for(self._client.delete(self._wake), 1)
            await self._client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url,
                socket_connect_timeout=2,
                socket_timeout=BLOCK_MS / 1000 + 5,
                retry=AsyncRetry(NoBackoff(), 0),  # errors reach _read, which resyncs
            )
        return self._client

    async def _newest_id(self, key: str) -> str:
        entries = await self._redis().xrevrange(key, "+", "-", count=1)
        newest = entries[0][0] if entries else None
        return "0-0" if newest is None else _text(newest)

    async def _read(self, deliver: Deliver) -> None:
        delay, broken = BACKOFF_START, False
        task = asyncio.current_task()
        # On Python 3.11 a cancel can be lost in asyncio.wait_for inside redis-py (fixed in
        # 3.12); the read then ends after its block, and this check ends the loop.
        while task is None or not task.cancelling():
            try:
                if broken:
                    await self._resync()
                    log.info("Redis bus: reading again")
                    broken = False
                await self._read_once(deliver)
                delay = BACKOFF_START
            except Exception as exc:  # Redis errors, and any bug: the reader must live on
                if not broken:
                    unexpected = not isinstance(exc, ERRORS)
                    log.warning("Redis bus: read failed (%s); retrying", exc, exc_info=unexpected)
                broken = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _read_once(self, deliver: Deliver) -> None:
        sent = dict(self._ids)
        streams: dict[Any, Any] = {**sent, self._wake: self._wake_id}
        reply = await self._redis().xread(streams, count=READ_COUNT, block=BLOCK_MS)
        for raw_key, entries in _stream_items(reply):
            key = _text(raw_key)
            if key == self._wake:
                self._wake_id = _text(entries[-1][0])
            elif entries and self._ids.get(key) == sent.get(key):  # not (re/un)watched meanwhile
                self._ids[key] = _text(entries[-1][0])
                _deliver(deliver, key.removeprefix(STREAM_PREFIX), entries)

    async def _resync(self) -> None:
        """A stream whose newest id is now below ours was recreated: read it from the start."""
        for key, held in [*self._ids.items(), (self._wake, self._wake_id)]:
            newest = await self._newest_id(key)
            if _id_key(newest) >= _id_key(held):
                continue
            if key == self._wake:
                self._wake_id = "0-0"
            elif self._ids.get(key) == held:
                self._ids[key] = "0-0"


def _deliver(deliver: Deliver, topic: str, entries: list[Any]) -> None:
    messages: list[Message] = []
    for entry_id, fields in entries:
        try:
            messages.append(decode(fields[FIELD]))
        except Exception:  # a foreign or corrupt entry must not stop the reader
            log.exception("Redis bus: skipping undecodable entry %s on %s", entry_id, topic)
    if not messages:
        return
    metrics.bus_delivered(time.time() - _id_key(_text(entries[0][0]))[0] / 1000)  # since XADD
    try:
        deliver(topic, messages)
    except Exception:
        log.exception("Redis bus: delivering to %s failed", topic)


def _stream_items(reply: Any) -> list[Any]:
    """XREAD's reply as (key, entries) pairs: from a list under RESP2, a dict under RESP3."""
    if isinstance(reply, dict):  # {key: [entries]}
        return [(key, value[0]) for key, value in reply.items() if value]
    return list(reply or [])


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
