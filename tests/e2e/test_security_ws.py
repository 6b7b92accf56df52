"""Issue 9, findings 6 and 12: WebSocket limits and revoked keys, against a real server.

Silent sockets are closed after the init timeout on both protocols; connections and
subscriptions are capped per key, per address while waiting for init and per process, with
each protocol's refusal; the counts come back after disconnects; a revoked or expired key's
open subscription is closed within seconds. The server keeps answering /healthz quickly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.graphql.ws_limits import SocketRegistry
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
APP_STATUS = "subscription($id: ID!) { applicationStatus(applicationId: $id) { id status } }"
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
}


@pytest.fixture
def server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters, **LIMITS) as server:
        yield server


@pytest.fixture
def app_id(server: Server) -> str:
    admin = server.client(Scope.ADMIN)
    return str(admin(CREATE_APP, input=GIT_APP())["createApplication"]["id"])


class Socket:
    """One WebSocket of either protocol, speaking just enough of it for these tests."""

    def __init__(self, server: Server, protocol: str) -> None:
        self.protocol = protocol
        self.legacy = protocol == "graphql-ws"
        conn = connect(server.ws_url, subprotocols=[protocol])  # type: ignore[list-item]
        self.ws: ClientConnection = conn.__enter__()  # as the harness does; closed by close()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 5) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def init(self, key: str) -> dict[str, Any]:
        self.send({"type": "connection_init", "payload": {"apiKey": key}})
        return self.recv()

    def subscribe(self, op_id: str, app_id: str) -> dict[str, Any]:
        """Start applicationStatus (it stays open); the first answer to it."""
        kind = "start" if self.legacy else "subscribe"
        payload = {"query": APP_STATUS, "variables": {"id": app_id}}
        self.send({"id": op_id, "type": kind, "payload": payload})
        return self.recv()

    def stop(self, op_id: str) -> None:
        self.send({"id": op_id, "type": "stop" if self.legacy else "complete"})

    def closed(self, timeout: float = 5) -> tuple[int, list[dict[str, Any]]]:
        """The close code the server sent and the messages before it."""
        messages = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(self.recv(timeout))
        assert closed.value.rcvd is not None, "the server did not send a close frame"
        return closed.value.rcvd.code, messages

    def close(self) -> None:
        self.ws.close()


def opened(stack: ExitStack, server: Server, protocol: str, key: str) -> Socket:
    sock = Socket(server, protocol)
    stack.callback(sock.close)
    assert sock.init(key)["type"] == "connection_ack"
    return sock


def assert_refused(sock: Socket, code: int, reason: str) -> None:
    """Closed with ``code``; legacy clients get a connection_error carrying it first."""
    got, messages = sock.closed()
    assert got == code
    if sock.legacy:
        assert messages[-1]["type"] == "connection_error", messages
        assert messages[-1]["payload"]["code"] == code
        assert reason in messages[-1]["payload"]["message"]


def assert_limit_error(message: dict[str, Any], op_id: str, reason: str) -> None:
    assert (message["type"], message["id"]) == ("error", op_id), message
    payload = message["payload"]  # legacy: one error; graphql-transport-ws: a list
    error = payload if isinstance(payload, dict) else payload[0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert reason in error["message"]


def assert_streaming(message: dict[str, Any], op_id: str) -> None:
    assert message["type"] in {"next", "data"} and message["id"] == op_id, message
    assert message["payload"]["data"]["applicationStatus"]["status"]


def sockets(server: Server) -> SocketRegistry:
    """The server's own counts (same process), to wait for a disconnect to be noticed."""
    registry: SocketRegistry = server.server.config.app.state.slipway.sockets
    return registry


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def healthz_ms(server: Server) -> float:
    """/healthz's answer time on an open connection (the client's own set-up not counted)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
        http.get("/healthz")
        started = time.perf_counter()
        res = http.get("/healthz")
        assert res.status_code == 200
        return (time.perf_counter() - started) * 1000


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
    assert time.monotonic() - started < 0.5


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
