"""The Redis bus of distributed mode: PUBLISH per message, one SUBSCRIBE connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import Unavailable
from app.logs.bus.base import Deliver
from app.logs.messages import Message, decode, encode

log = logging.getLogger(__name__)
PREFIX = "slipway:bus:"


class RedisBus:
    """Topics are channels ``slipway:bus:<topic>``; only watched topics are subscribed."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sync = redis.Redis.from_url(url)
        self._client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    def publish(self, topic: str, message: Message) -> None:
        try:
            self._sync.publish(PREFIX + topic, encode(message))
        except RedisError as exc:
            raise Unavailable(f"Redis bus unavailable: {exc}") from exc

    async def start(self, deliver: Deliver) -> None:
        self._client = aioredis.Redis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        # A placeholder subscription so the reader has a connection from the start.
        await self._pubsub.subscribe(PREFIX + "_")
        self._task = asyncio.create_task(self._read(deliver), name="redis-bus-reader")

    async def _read(self, deliver: Deliver) -> None:
        assert self._pubsub is not None
        while True:
            try:
                raw = await self._pubsub.get_message(timeout=1.0)
            except RedisError:
                log.exception("Redis bus read failed; retrying")
                await asyncio.sleep(1)
                continue
            if raw is None or raw.get("type") != "message":
                continue
            topic = raw["channel"].decode().removeprefix(PREFIX)
            deliver(topic, [decode(raw["data"])])

    async def watch(self, topic: str) -> None:
        if self._pubsub is not None:
            await self._pubsub.subscribe(PREFIX + topic)

    async def unwatch(self, topic: str) -> None:
        if self._pubsub is not None:
            await self._pubsub.unsubscribe(PREFIX + topic)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._client is not None:
            await self._client.aclose()
        self._sync.close()
