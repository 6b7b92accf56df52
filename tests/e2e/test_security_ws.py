"""Issue 9, findings 6 and 12: WebSocket limits and revoked keys, against a real server.

Silent sockets are closed after the init timeout on both protocols; connections and
subscriptions are capped per key, per address while waiting for init and per process, with
each protocol's refusal; the counts come back after disconnects; a revoked or expired key's
open subscription is closed within seconds. The server keeps answering /healthz quickly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP
from tests.e2e.wsclient import (
    PROTOCOLS,
    Socket,
    assert_limit_error,
    assert_refused,
    assert_streaming,
    healthz_ms,
    opened,
    sockets,
    wait_for,
)

CREATE_KEY = """
mutation($name: String!, $scopes: [Scope!]!, $expiresAt: DateTime) {
  createApiKey(name: $name, scopes: $scopes, expiresAt: $expiresAt) { id key }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"
LIMITS = {
    "ws_init_timeout": 1.0,
    "ws_max_connections": 8,
    "ws_max_connections_per_key": 3,
    "ws_max_pending_per_address": 3,
    "ws_max_subscriptions": 6,
    "ws_max_subscriptions_per_key": 4,
    "ws_recheck_interval": 0.5,
    "auth_failure_limit": 3,
}


@pytest.fixture
def server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters, **LIMITS) as server:
        yield server


@pytest.fixture
def app_id(server: Server) -> str:
    admin = server.client(Scope.ADMIN)
    return str(admin(CREATE_APP, input=GIT_APP())["createApplication"]["id"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_socket_that_never_sends_init_is_closed_after_the_timeout(
    server: Server, protocol: str
) -> None:
    sock = Socket(server, protocol)
    started = time.monotonic()
    assert_refused(sock, 4408, "initialisation timeout")
    assert 0.8 < time.monotonic() - started < 3.0
    assert healthz_ms(server) < 100


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_bad_key_is_closed_at_once(server: Server, protocol: str) -> None:
    sock = Socket(server, protocol)
    started = time.monotonic()
    sock.send({"type": "connection_init", "payload": {"apiKey": "slw_" + "x" * 43}})
    assert_refused(sock, 4401, "Unauthorized")
    assert time.monotonic() - started < 1.0  # at once, not after some delay


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_repeated_bad_keys_from_one_address_are_refused_with_4429(
    server: Server, protocol: str
) -> None:
    good = server.key(Scope.READ)
    with ExitStack() as stack:
        opened(stack, server, protocol, good)  # known good before the guessing starts
    bad = {"type": "connection_init", "payload": {"apiKey": "slw_" + "y" * 43}}
    for _ in range(3):
        sock = Socket(server, protocol)
        sock.send(bad)
        assert_refused(sock, 4401, "Unauthorized")
    sock = Socket(server, protocol)
    sock.send(bad)
    assert_refused(sock, 4429, "too many failed authentications")
    assert healthz_ms(server) < 100
    with ExitStack() as stack:
        opened(stack, server, protocol, good)  # a known good key still gets in


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connections_per_key_are_capped_and_come_back_after_disconnects(
    server: Server, protocol: str
) -> None:
    key, other = server.key(Scope.READ), server.key(Scope.READ)
    for _ in range(3):  # open to the cap, be refused, close them all: no count leaks
        with ExitStack() as stack:
            socks = [opened(stack, server, protocol, key) for _ in range(3)]
            extra = Socket(server, protocol)
            stack.callback(extra.close)
            extra.send({"type": "connection_init", "payload": {"apiKey": key}})
            assert_refused(extra, 4429, "too many WebSockets for this API key")
            assert healthz_ms(server) < 100
            opened(stack, server, protocol, other)  # the cap is the key's, not everyone's
            socks[0].close()
            wait_for(lambda: sockets(server).connections() == 3)  # two of key, other
            opened(stack, server, protocol, key)  # the closed one's place is free again
        wait_for(lambda: sockets(server).connections() == 0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_process_wide_connection_cap_answers_1013(server: Server, protocol: str) -> None:
    keys = [server.key(Scope.READ) for _ in range(3)]
    with ExitStack() as stack:
        socks = [opened(stack, server, protocol, keys[i % 3]) for i in range(8)]
        refused = Socket(server, protocol)  # refused before it says anything
        assert_refused(refused, 1013, "connection limit")
        assert healthz_ms(server) < 100
        socks[-1].close()  # keys[1]'s third
        wait_for(lambda: sockets(server).connections() == 7)
        opened(stack, server, protocol, keys[1])


def test_sockets_waiting_for_init_are_capped_per_address(server: Server) -> None:
    key = server.key(Scope.READ)
    with ExitStack() as stack:
        waiting = [Socket(server, "graphql-transport-ws") for _ in range(3)]
        for sock in waiting:
            stack.callback(sock.close)
        assert_refused(Socket(server, "graphql-transport-ws"), 4429, "waiting for connection_init")
        assert waiting[0].init(key)["type"] == "connection_ack"  # no longer waiting
        opened(stack, server, "graphql-transport-ws", key)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscriptions_per_key_are_capped_across_connections_and_come_back(
    server: Server, app_id: str, protocol: str
) -> None:
    key = server.key(Scope.READ)
    with ExitStack() as stack:
        first, second = (opened(stack, server, protocol, key) for _ in range(2))
        for n in range(3):
            assert_streaming(first.subscribe(f"a{n}", app_id), f"a{n}")
        assert_streaming(second.subscribe("b0", app_id), "b0")
        reply = second.subscribe("b1", app_id)  # the key's fifth
        assert_limit_error(reply, "b1", "too many subscriptions for this API key")
        assert healthz_ms(server) < 100
        first.stop("a0")
        wait_for(lambda: sockets(server).operations() == 3)
        assert_streaming(second.subscribe("b1", app_id), "b1")
        first.close()  # its two running subscriptions end with it
        wait_for(lambda: sockets(server).operations() == 2)
        for n in range(2, 4):
            assert_streaming(second.subscribe(f"b{n}", app_id), f"b{n}")
        assert_limit_error(second.subscribe("b4", app_id), "b4", "for this API key")


def test_the_process_wide_subscription_cap(server: Server, app_id: str) -> None:
    protocol = "graphql-transport-ws"
    with ExitStack() as stack:
        first = opened(stack, server, protocol, server.key(Scope.READ))
        second = opened(stack, server, protocol, server.key(Scope.READ))
        for n in range(4):
            assert_streaming(first.subscribe(f"a{n}", app_id), f"a{n}")
        for n in range(2):
            assert_streaming(second.subscribe(f"b{n}", app_id), f"b{n}")
        reply = second.subscribe("b2", app_id)
        assert_limit_error(reply, "b2", "the server is at its subscription limit")
        assert healthz_ms(server) < 100


def _new_key(admin: Client, expires_at: datetime | None = None) -> dict[str, Any]:
    when = expires_at.isoformat() if expires_at else None
    created: dict[str, Any] = admin(CREATE_KEY, name="ws", scopes=["READ"], expiresAt=when)
    return created["createApiKey"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_revoked_keys_subscription_is_closed_within_seconds(
    server: Server, app_id: str, protocol: str
) -> None:
    admin = server.client(Scope.ADMIN)
    created = _new_key(admin)
    with ExitStack() as stack:
        sock = opened(stack, server, protocol, created["key"])
        assert_streaming(sock.subscribe("1", app_id), "1")
        assert admin(REVOKE_KEY, id=created["id"])["revokeApiKey"] is True
        started = time.monotonic()
        assert_refused(sock, 4401, "revoked or expired")
        assert time.monotonic() - started < 3.0
        assert healthz_ms(server) < 100
        again = Socket(server, protocol)
        stack.callback(again.close)
        again.send({"type": "connection_init", "payload": {"apiKey": created["key"]}})
        assert_refused(again, 4401, "Unauthorized")


def test_an_expired_keys_subscription_is_closed_within_seconds(server: Server, app_id: str) -> None:
    admin = server.client(Scope.ADMIN)
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    created = _new_key(admin, expiry)
    with ExitStack() as stack:
        sock = opened(stack, server, "graphql-transport-ws", created["key"])
        assert_streaming(sock.subscribe("1", app_id), "1")
        code, _ = sock.closed(timeout=6)
        assert code == 4401
        assert datetime.now(UTC) - expiry < timedelta(seconds=2)
