"""Replay + follow against the in-memory bus: no gap, no duplicate, completion, lag recovery."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path

import pytest

from app.logs import hub as hub_module
from app.logs.bus.memory import MemoryBus
from app.logs.hub import Hub
from app.logs.reader import follow
from app.logs.writer import LogWriter


async def _collect(hub: Hub, path: Path, after: int, finished: threading.Event) -> list[int]:
    async def is_finished() -> bool:
        return finished.is_set()

    seqs: list[int] = []
    async for batch in follow(
        hub=hub, path=path, deployment_id="d", after_seq=after, is_finished=is_finished
    ):
        seqs.extend(x.seq for x in batch)
    return seqs


def _produce(writer: LogWriter, count: int, finished: threading.Event, every: int = 0) -> None:
    for i in range(count):
        writer.write(f"line {i}")
        if every and i % every == 0:
            threading.Event().wait(0.001)
    writer.close()
    finished.set()


async def test_follow_from_the_start_while_writing(tmp_path: Path) -> None:
    hub = Hub(MemoryBus())
    await hub.start()
    path = tmp_path / "d.log"
    writer = LogWriter(path=path, deployment_id="d", bus=hub.bus)
    finished = threading.Event()
    for i in range(300):
        writer.write(f"before {i}")
    producer = threading.Thread(target=_produce, args=(writer, 3000, finished, 100))
    task = asyncio.create_task(_collect(hub, path, 0, finished))
    await asyncio.sleep(0)
    producer.start()
    seqs = await asyncio.wait_for(task, 30)
    producer.join()
    assert seqs == list(range(1, 3301))
    await hub.stop()


async def test_after_seq_and_finished_log(tmp_path: Path) -> None:
    hub = Hub(MemoryBus())
    await hub.start()
    path = tmp_path / "d.log"
    writer = LogWriter(path=path, deployment_id="d", bus=hub.bus)
    finished = threading.Event()
    _produce(writer, 50, finished)
    assert await asyncio.wait_for(_collect(hub, path, 45, finished), 5) == [46, 47, 48, 49, 50]
    await hub.stop()


async def test_writer_that_died_without_end_marker_still_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.logs.reader as reader

    monkeypatch.setattr(reader, "IDLE_CHECK", 0.1)
    hub = Hub(MemoryBus())
    await hub.start()
    path = tmp_path / "d.log"
    writer = LogWriter(path=path, deployment_id="d", bus=hub.bus)
    writer.write("a\nb")
    finished = threading.Event()
    task = asyncio.create_task(_collect(hub, path, 0, finished))
    await asyncio.sleep(0.05)
    finished.set()  # the row says ERROR (reaped) but no End was published
    assert await asyncio.wait_for(task, 5) == [1, 2]
    await hub.stop()


async def test_lagging_subscriber_resyncs_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "MAX_BACKLOG", 100)
    hub = Hub(MemoryBus())
    await hub.start()
    path = tmp_path / "d.log"
    writer = LogWriter(path=path, deployment_id="d", bus=hub.bus)
    sub = await hub.subscribe("logs:d")
    for i in range(500):  # published, delivered to the hub, never read by `sub`
        writer.write(f"line {i}")
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert sub.lagged, "a subscriber far behind is shed, not buffered without bound"
    finished = threading.Event()
    task = asyncio.create_task(_collect(hub, path, 0, finished))
    await asyncio.sleep(0.01)
    threading.Thread(target=_produce, args=(writer, 500, finished)).start()
    assert await asyncio.wait_for(task, 10) == list(range(1, 1001))
    await sub.close()
    await hub.stop()


async def test_a_stuck_subscriber_does_not_make_the_hub_hold_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from app.logs.messages import Lines
    from app.types import LogLine, LogStream

    monkeypatch.setattr(hub_module, "MAX_BACKLOG", 1000)
    monkeypatch.setattr(hub_module, "TRIM_AT", 8)
    hub = Hub(MemoryBus(), wakeups_per_second=math.inf)  # unpaced: each push read at once
    stuck = await hub.subscribe("t")
    reader = await hub.subscribe("t")
    now = datetime.now(UTC)
    topic = hub._topics["t"]
    for n in range(200):  # 200 chunks of 100 lines = 20,000 lines
        chunk = tuple(LogLine(n * 100 + i, now, LogStream.STDOUT, None, "x") for i in range(100))
        hub._deliver("t", [Lines(chunk)])
        await reader.next(timeout=0)
        held = topic.marks[-1] - topic.base_mark if topic.marks else 0
        assert held <= 1000 + 100 + 8 * 100, held
    assert stuck.lagged and not reader.lagged


async def test_wake_ups_are_paced_by_the_number_of_subscribers() -> None:
    """4 subscribers at 40 wake-ups/s: a topic wakes them at most every 0.1 s; what is
    pushed meanwhile waits and goes out as one batch; a push after a quiet spell goes out
    at once."""
    import time

    from app.logs.messages import Changed

    hub = Hub(MemoryBus(), wakeups_per_second=40)
    subs = [await hub.subscribe("t") for _ in range(4)]
    started = time.monotonic()
    hub._deliver("t", [Changed("a")])
    assert [await s.next(timeout=0) for s in subs] == [[Changed("a")]] * 4  # at once
    hub._deliver("t", [Changed("b")])
    hub._deliver("t", [Changed("c")])
    assert await subs[0].next(timeout=0) == []  # not before the next wake-up
    batches = await asyncio.gather(*(s.next(timeout=1) for s in subs))
    assert time.monotonic() - started >= 0.09
    assert batches == [[Changed("b"), Changed("c")]] * 4
    await asyncio.sleep(0.11)
    hub._deliver("t", [Changed("d")])
    assert await subs[1].next(timeout=0) == [Changed("d")]
    for s in subs:
        await s.close()
    assert hub._topics == {}


async def test_the_lines_of_one_wake_up_reach_every_subscriber_as_one_chunk() -> None:
    """Pushes within one interval reach every subscriber as one Lines message (the same
    object), seqs in order; a subscriber that joined between pushes gets only what followed
    its joining, and the merge starts there."""
    from datetime import UTC, datetime

    from app.logs.messages import End, Lines
    from app.types import LogLine, LogStream

    now = datetime.now(UTC)

    def chunk(*seqs: int) -> Lines:
        return Lines(tuple(LogLine(n, now, LogStream.STDOUT, None, "x") for n in seqs))

    hub = Hub(MemoryBus(), wakeups_per_second=20)
    early = [await hub.subscribe("t") for _ in range(2)]
    hub._deliver("t", [chunk(1)])  # at once: the first wake-up
    assert [await s.next(timeout=0) for s in early] == [[chunk(1)]] * 2
    hub._deliver("t", [chunk(2, 3)])
    late = await hub.subscribe("t")
    hub._deliver("t", [chunk(4)])
    hub._deliver("t", [chunk(5), End(5)])
    got = await asyncio.gather(*(s.next(timeout=1) for s in [*early, late]))
    assert got[0] == got[1] == [chunk(2, 3), chunk(4, 5), End(5)]  # merged past `late` only
    assert got[2] == [chunk(4, 5), End(5)]
    assert got[0][1] is got[1][1] is got[2][0]  # one object: executed and encoded once
    for n in (6, 7, 8):
        hub._deliver("t", [chunk(n)])
    got = await asyncio.gather(*(s.next(timeout=1) for s in [*early, late]))
    assert got == [[chunk(6, 7, 8)]] * 3
    assert got[0][0] is got[1][0] is got[2][0]
    topic = hub._topics["t"]
    assert topic.marks[-1] - topic._mark_at(topic.released - 1) == 3  # marks follow the merge
    for s in [*early, late]:
        await s.close()
