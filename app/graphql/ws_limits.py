"""Open GraphQL WebSockets of this process: caps on connections and operations, key re-checks.

Counts are derived from the live sockets (each socket reports its own running operations),
so a socket that goes away, however it goes, takes its connection and its operations out
of every count at once: nothing to leak. All methods run on the event loop, without
awaiting between a check and its update, so a check and its update are atomic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from app.settings import Settings


class Socket(Protocol):
    def active_operations(self) -> int:
        """Operations (subscriptions, or queries over the socket) running now."""
        ...


class TooMany(Exception):
    """A cap is reached; ``server_wide`` when it is the process's, not the caller's."""

    def __init__(self, message: str, *, server_wide: bool = False) -> None:
        super().__init__(message)
        self.server_wide = server_wide


@dataclass(frozen=True)
class Limits:
    connections: int
    connections_per_key: int
    pending_per_address: int
    subscriptions: int
    subscriptions_per_key: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            connections=settings.ws_max_connections,
            connections_per_key=settings.ws_max_connections_per_key,
            pending_per_address=settings.ws_max_pending_per_address,
            subscriptions=settings.ws_max_subscriptions,
            subscriptions_per_key=settings.ws_max_subscriptions_per_key,
        )


class SocketRegistry:
    """Every open socket, the address of those not yet authenticated, the key of the others."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open: set[Socket] = set()
        self._pending: dict[str, set[Socket]] = {}
        self._address: dict[Socket, str] = {}
        self._by_key: dict[str, set[Socket]] = {}
        self._key: dict[Socket, str] = {}
        self._checks: dict[str, tuple[float, asyncio.Task[bool]]] = {}

    def open(self, socket: Socket, address: str | None, limits: Limits) -> None:
        """Count a socket just accepted; TooMany when the process or its address is full."""
        if len(self._open) >= limits.connections:
            raise TooMany("the server is at its WebSocket connection limit", server_wide=True)
        if address is not None:
            waiting = self._pending.setdefault(address, set())
            if len(waiting) >= limits.pending_per_address:
                raise TooMany("too many WebSockets from this address waiting for connection_init")
            waiting.add(socket)
            self._address[socket] = address
        self._open.add(socket)

    def authenticated(self, socket: Socket, key_id: str, limits: Limits) -> None:
        """The socket now belongs to ``key_id``; TooMany when that key has its fill."""
        mine = self._by_key.setdefault(key_id, set())
        if socket not in mine and len(mine) >= limits.connections_per_key:
            raise TooMany(f"too many WebSockets for this API key (at most {len(mine)})")
        self._unpend(socket)
        mine.add(socket)
        self._key[socket] = key_id

    def check_operation(self, socket: Socket, limits: Limits) -> None:
        """TooMany when one more operation would pass the key's or the process's cap."""
        key_id = self._key.get(socket)
        if key_id is not None:
            mine = sum(s.active_operations() for s in self._by_key[key_id])
            if mine >= limits.subscriptions_per_key:
                raise TooMany(f"too many subscriptions for this API key (at most {mine})")
        if self.operations() >= limits.subscriptions:
            raise TooMany("the server is at its subscription limit", server_wide=True)

    def close(self, socket: Socket) -> None:
        """Forget the socket (idempotent)."""
        self._open.discard(socket)
        self._unpend(socket)
        key_id = self._key.pop(socket, None)
        if key_id is not None:
            mine = self._by_key[key_id]
            mine.discard(socket)
            if not mine:
                del self._by_key[key_id]
                self._checks.pop(key_id, None)

    def connections(self, key_id: str | None = None) -> int:
        if key_id is None:
            return len(self._open)
        return len(self._by_key.get(key_id, ()))

    def operations(self, key_id: str | None = None) -> int:
        sockets = self._key if key_id is None else self._by_key.get(key_id, ())
        return sum(s.active_operations() for s in sockets)

    async def still_valid(
        self, key_id: str, probe: Callable[[], Awaitable[bool]], *, max_age: float
    ) -> bool:
        """``probe()``'s answer for ``key_id``, shared by all its sockets for ``max_age`` s,
        so many sockets of one key cost one lookup per interval."""
        now = self._clock()
        entry = self._checks.get(key_id)
        if entry is None or now - entry[0] >= max_age:
            task = asyncio.ensure_future(probe())
            task.add_done_callback(_retrieve)
            entry = self._checks[key_id] = (now, task)
        return await asyncio.shield(entry[1])

    def _unpend(self, socket: Socket) -> None:
        address = self._address.pop(socket, None)
        if address is not None:
            waiting = self._pending[address]
            waiting.discard(socket)
            if not waiting:
                del self._pending[address]


def _retrieve(task: asyncio.Task[bool]) -> None:
    if not task.cancelled():
        task.exception()  # read by whoever awaits; this keeps asyncio from warning otherwise
