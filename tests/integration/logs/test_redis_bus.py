"""The Redis stream bus against a real Redis: order, the watch boundary, fan-out, outages."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from app.logs.bus import redis as redis_bus
from app.logs.bus.redis import STREAM_PREFIX, RedisBus
from app.logs.messages import Changed, Lines, Message
from app.types import LogLine, LogStream
from tests.services import missing

pytestmark = pytest.mark.redis


class Inbox:
    """A ``deliver`` that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Message]]] = []

    def __call__(self, topic: str, messages: list[Message]) -> None:
        self.calls.append((topic, list(messages)))

    def statuses(self, topic: str) -> list[str | None]:
        return [
            m.status for t, ms in self.calls if t == topic for m in ms if isinstance(m, Changed)
        ]

    async def wait(self, topic: str, count: int, timeout: float = 5.0) -> list[str | None]:
        deadline = time.monotonic() + timeout
        while len(got := self.statuses(topic)) < count:
            assert time.monotonic() < deadline, f"{topic}: {len(got)} of {count}: {got[-5:]}"
            await asyncio.sleep(0.01)
        return got


@asynccontextmanager
async def running(url: str) -> AsyncIterator[tuple[RedisBus, Inbox]]:
    bus, inbox = RedisBus(url), Inbox()
    await bus.start(inbox)
    try:
        yield bus, inbox
    finally:
        await bus.stop()


@pytest.fixture
def url(redis_url: str) -> str:
    """A database of its own, emptied."""
    url = redis_url.rsplit("/", 1)[0] + "/5"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


async def test_order_is_kept_across_threads(url: str) -> None:
    async with running(url) as (bus, inbox):
        await bus.watch("t")

        def produce(n: int) -> None:
            for i in range(500):
                bus.publish("t", Changed(f"{n}:{i}"))

        threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        got = await inbox.wait("t", 2000)
    assert len(got) == 2000
    for n in range(4):
        assert [s for s in got if s and s.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(500)]


async def test_watch_boundary(url: str) -> None:
    async with running(url) as (bus, inbox):
        bus.publish("t", Changed("before"))
        with redis.Redis.from_url(url) as client:  # publish is asynchronous: let it land
            deadline = time.monotonic() + 5
            while not client.xlen(STREAM_PREFIX + "t"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        await bus.watch("t")
        bus.publish("t", Changed("after"))
        assert await inbox.wait("t", 1) == ["after"]
        await asyncio.sleep(0.2)
    assert inbox.statuses("t") == ["after"]


async def test_unwatch_stops_delivery(url: str) -> None:
    async with running(url) as (bus, inbox):
        await bus.watch("t")
        await bus.watch("other")
        bus.publish("t", Changed("a"))
        await inbox.wait("t", 1)
        await bus.unwatch("t")
        bus.publish("t", Changed("b"))
        bus.publish("other", Changed("c"))  # sent after b: once c is read, b would have been
        await inbox.wait("other", 1)
        await asyncio.sleep(0.1)
    assert inbox.statuses("t") == ["a"]


async def test_every_process_receives(url: str) -> None:
    async with running(url) as (one, inbox_one), running(url) as (two, inbox_two):
        await one.watch("t")
        await two.watch("t")
        for i in range(100):
            (one if i % 2 else two).publish("t", Changed(str(i)))
        expected = [str(i) for i in range(100)]
        assert sorted(await inbox_one.wait("t", 100), key=int) == expected
        assert sorted(await inbox_two.wait("t", 100), key=int) == expected


async def test_lines_arrive_in_batches(url: str) -> None:
    async with running(url) as (bus, inbox):
        await bus.watch("logs")
        now = datetime.now(UTC)
        for seq in range(1, 3001):
            bus.publish("logs", Lines((LogLine(seq, now, LogStream.STDOUT, None, f"l{seq}"),)))
        deadline = time.monotonic() + 5
        while sum(len(m.lines) for _, ms in inbox.calls for m in ms if isinstance(m, Lines)) < 3000:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    seqs = [x.seq for _, ms in inbox.calls for m in ms if isinstance(m, Lines) for x in m.lines]
    assert seqs == list(range(1, 3001))
    assert len(inbox.calls) <= 300, f"{len(inbox.calls)} deliver calls for 3000 messages"


class OwnRedis:
    """A redis-server of this test's own, stopped and started by its Popen only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly"]
        with (self.directory / "redis.log").open("ab") as out:
            self.proc = subprocess.Popen(
                ["redis-server", *args, "no", "--dir", str(self.directory)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not answer"
                    time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        missing("redis-server on PATH")
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_messages_published_during_an_outage_arrive_after_it(own_redis: OwnRedis) -> None:
    async with running(own_redis.url) as (bus, inbox):
        await bus.watch("t")
        for i in range(50):
            bus.publish("t", Changed(str(i)))
        await inbox.wait("t", 50)
        own_redis.kill()
        slowest = 0.0
        for i in range(50, 150):
            started = time.perf_counter()
            bus.publish("t", Changed(str(i)))
            slowest = max(slowest, time.perf_counter() - started)
            if i % 20 == 0:
                await asyncio.sleep(0.05)  # let the reader and the publisher meet the outage
        own_redis.start()
        got = await inbox.wait("t", 150, timeout=10)
    assert slowest < 0.05
    assert got == [str(i) for i in range(150)]


async def test_a_stream_that_comes_back_behind_is_read_from_its_start(own_redis: OwnRedis) -> None:
    """Redis restarted empty and new ids are below the one we hold (the clock went back)."""
    with redis.Redis.from_url(own_redis.url) as client:
        client.xadd(STREAM_PREFIX + "t", {"m": b"{}"}, id="9999999999999-0")
    async with running(own_redis.url) as (bus, inbox):
        await bus.watch("t")
        own_redis.kill()
        own_redis.start()
        bus.publish("t", Changed("after the restart"))
        assert await inbox.wait("t", 1, timeout=10) == ["after the restart"]


async def test_a_long_outage_drops_the_oldest_and_warns_once(
    own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(redis_bus, "MAX_BUFFER", 10)
    async with running(own_redis.url) as (bus, inbox):
        await bus.watch("t")
        bus.publish("t", Changed("first"))
        await inbox.wait("t", 1)
        own_redis.kill()
        for i in range(30):
            bus.publish("t", Changed(str(i)))
            await asyncio.sleep(0.005)
        own_redis.start()
        got = await inbox.wait("t", 11, timeout=10)
    assert got == ["first", *(str(i) for i in range(20, 30))]
    assert sum("dropping the oldest" in r.getMessage() for r in caplog.records) == 1
