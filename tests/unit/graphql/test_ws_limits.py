"""SocketRegistry: the caps, counts that come back when sockets go, shared key re-checks."""

from __future__ import annotations

import asyncio

import pytest

from app.graphql.ws_limits import Limits, SocketRegistry, TooMany

LIMITS = Limits(
    connections=4,
    connections_per_key=2,
    pending_per_address=2,
    subscriptions=5,
    subscriptions_per_key=3,
)


class FakeSocket:
    def __init__(self, operations: int = 0) -> None:
        self.operations = operations

    def active_operations(self) -> int:
        return self.operations


def test_the_process_cap_counts_every_open_socket() -> None:
    registry = SocketRegistry()
    socks = [FakeSocket() for _ in range(4)]
    for n, sock in enumerate(socks):
        registry.open(sock, f"10.0.0.{n}", LIMITS)
    with pytest.raises(TooMany) as refused:
        registry.open(FakeSocket(), "10.0.0.9", LIMITS)
    assert refused.value.server_wide
    registry.close(socks[0])
    registry.close(socks[0])  # twice: still one place freed, not two
    registry.open(FakeSocket(), "10.0.0.9", LIMITS)
    with pytest.raises(TooMany):
        registry.open(FakeSocket(), "10.0.0.9", LIMITS)


def test_sockets_waiting_for_init_are_capped_per_address_until_authenticated() -> None:
    registry = SocketRegistry()
    first, second = FakeSocket(), FakeSocket()
    registry.open(first, "10.0.0.1", LIMITS)
    registry.open(second, "10.0.0.1", LIMITS)
    with pytest.raises(TooMany) as refused:
        registry.open(FakeSocket(), "10.0.0.1", LIMITS)
    assert not refused.value.server_wide
    registry.open(FakeSocket(), "10.0.0.2", LIMITS)  # another address is not affected
    registry.authenticated(first, "k1", LIMITS)
    registry.open(FakeSocket(), "10.0.0.1", LIMITS)


def test_connections_per_key_come_back_when_sockets_close() -> None:
    registry = SocketRegistry()
    limits = Limits(10, 2, 10, 10, 10)
    socks = [FakeSocket() for _ in range(3)]
    for sock in socks:
        registry.open(sock, "10.0.0.1", limits)
    for sock in socks[:2]:
        registry.authenticated(sock, "k1", limits)
    with pytest.raises(TooMany):
        registry.authenticated(socks[2], "k1", limits)
    registry.authenticated(socks[2], "k2", limits)
    for _ in range(3):  # close and reopen up to the cap, again and again
        registry.close(socks[0])
        socks[0] = FakeSocket()
        registry.open(socks[0], "10.0.0.1", limits)
        registry.authenticated(socks[0], "k1", limits)
        assert registry.connections("k1") == 2
    registry.close(socks[0])
    registry.close(socks[1])
    assert registry.connections("k1") == 0
    assert registry.connections() == 1


def test_operations_are_capped_per_key_across_sockets_and_per_process() -> None:
    registry = SocketRegistry()
    a1, a2, b = FakeSocket(2), FakeSocket(1), FakeSocket(1)
    for sock, key in ((a1, "a"), (a2, "a"), (b, "b")):
        registry.open(sock, "10.0.0.1", LIMITS)
        registry.authenticated(sock, key, LIMITS)
    with pytest.raises(TooMany) as per_key:
        registry.check_operation(a2, LIMITS)  # a has 3 across its two sockets
    assert not per_key.value.server_wide
    registry.check_operation(b, LIMITS)
    b.operations = 2  # 5 in the process
    with pytest.raises(TooMany) as process:
        registry.check_operation(b, LIMITS)
    assert process.value.server_wide
    registry.close(a1)  # its operations go with it
    assert registry.operations("a") == 1
    registry.check_operation(a2, LIMITS)


async def test_one_probe_per_key_serves_all_its_sockets_within_max_age() -> None:
    now = [0.0]
    registry = SocketRegistry(clock=lambda: now[0])
    calls: list[str] = []

    async def probe() -> bool:
        calls.append("probe")
        await asyncio.sleep(0)
        return True

    results = await asyncio.gather(
        *(registry.still_valid("k", probe, max_age=1.0) for _ in range(5))
    )
    assert results == [True] * 5 and len(calls) == 1
    now[0] = 1.5
    assert await registry.still_valid("k", probe, max_age=1.0)
    assert len(calls) == 2
