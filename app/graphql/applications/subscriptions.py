"""``applicationHealth``: the application as it is, then again each time the runtime
monitor changes its health (or anything else selected changes). ``applicationStats``: its
running tasks' figures about once a second, from one engine stats stream per container
(``runtime/stats.py``) however many subscribe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from datetime import datetime

import strawberry

from app.db.repos import applications
from app.engine.events import application_topic
from app.errors import Unavailable
from app.graphql.applications.types import Application
from app.graphql.context import Info
from app.graphql.permissions import CanRead
from app.runtime.stats import StatsStreams, TaskSample

TASKS_EVERY_S = 2.0  # how often the running tasks are listed again


@strawberry.type(description="one running task's resource use, from the engine's stats")
class TaskStats:
    task_id: strawberry.ID
    container_id: str
    cpu_percent: float = strawberry.field(description="of one core, summed over cores")
    memory_bytes: float = strawberry.field(description="used, without the page cache")
    memory_limit_bytes: float = strawberry.field(description="the limit, or the host's memory")
    network_rx_bytes: float
    network_tx_bytes: float
    at: datetime

    @classmethod
    def of(cls, s: TaskSample) -> TaskStats:
        return cls(
            task_id=strawberry.ID(s.task_id),
            container_id=s.container_id,
            cpu_percent=s.cpu_percent,
            memory_bytes=s.memory_bytes,
            memory_limit_bytes=s.memory_limit_bytes,
            network_rx_bytes=s.network_rx_bytes,
            network_tx_bytes=s.network_tx_bytes,
            at=s.at,
        )


@strawberry.type
class ApplicationSubscriptions:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="the application now, then after each change of its health (the "
        "monitor's announcements); ends when the application is deleted",
    )
    async def application_health(
        self, info: Info, application_id: strawberry.ID
    ) -> AsyncGenerator[Application, None]:
        ctx = info.context
        sub = await ctx.state.hub.subscribe(application_topic(str(application_id)))
        try:
            current = Application.from_row(await ctx.db(applications.require, str(application_id)))
            ctx.loaders.clear()
            yield current
            while True:
                announced = await sub.next(timeout=30.0)
                row = await ctx.db(applications.get, str(application_id))
                if row is None:
                    return
                latest = Application.from_row(row)
                if announced or latest != current:  # app.graphql.distinct drops equal ones
                    ctx.loaders.clear()
                    yield latest
                current = latest
        finally:
            await sub.close()

    @strawberry.subscription(
        permission_classes=[CanRead],
        description="the running tasks' CPU, memory and network figures, about once a "
        "second; one engine stats stream per container whoever subscribes. UNAVAILABLE "
        "where this process has no engine (distributed mode's API servers)",
    )
    async def application_stats(
        self, info: Info, application_id: strawberry.ID
    ) -> AsyncGenerator[list[TaskStats], None]:
        ctx = info.context
        streams = ctx.state.stats
        if streams is None:
            raise Unavailable("task figures need the Docker engine in this process")
        app = await ctx.db(applications.require, str(application_id))
        async for batch in _follow_stats(streams, app.app_name):
            yield batch


async def _follow_stats(streams: StatsStreams, service: str) -> AsyncGenerator[list[TaskStats]]:
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[TaskSample] = asyncio.Queue()
    latest: dict[str, TaskSample] = {}
    leaving: dict[str, Callable[[], None]] = {}

    def listener(s: TaskSample) -> None:
        loop.call_soon_threadsafe(arrived.put_nowait, s)

    async def relist() -> None:
        running = dict(await asyncio.to_thread(streams.running_tasks, service))
        by_container = {cid: tid for tid, cid in running.items()}
        for cid in list(leaving):
            if cid not in by_container:
                leaving.pop(cid)()
                latest.pop(cid, None)
        for cid, tid in by_container.items():
            if cid not in leaving:
                leaving[cid] = streams.watch(cid, tid, listener)

    try:
        await relist()
        next_list = loop.time() + TASKS_EVERY_S
        while True:
            with contextlib.suppress(TimeoutError):
                s = await asyncio.wait_for(arrived.get(), timeout=1.0)
                if s.container_id in leaving:
                    latest[s.container_id] = s
                while not arrived.empty():  # the other containers' samples of this second
                    s = arrived.get_nowait()
                    if s.container_id in leaving:
                        latest[s.container_id] = s
                yield [TaskStats.of(v) for v in latest.values()]
            if loop.time() >= next_list:
                await relist()
                next_list = loop.time() + TASKS_EVERY_S
    finally:
        for leave in leaving.values():
            leave()
