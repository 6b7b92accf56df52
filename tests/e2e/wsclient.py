"""A WebSocket client of either GraphQL protocol for the security e2e tests, and checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.graphql.ws_limits import SocketRegistry
from tests.e2e.harness import Server

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
APP_STATUS = "subscription($id: ID!) { applicationStatus(applicationId: $id) { id status } }"


class Socket:
    """One WebSocket of either protocol, speaking just enough of it for these tests."""

    def __init__(self, server: Server, protocol: str) -> None:
        self.protocol = protocol
        self.legacy = protocol == "graphql-ws"
        self.last_reason = ""
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
        """The close code the server sent and the messages before it (reason: last_reason)."""
        messages = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(self.recv(timeout))
        assert closed.value.rcvd is not None, "the server did not send a close frame"
        self.last_reason = closed.value.rcvd.reason
        return closed.value.rcvd.code, messages

    def close(self) -> None:
        self.ws.close()


def opened(stack: ExitStack, server: Server, protocol: str, key: str) -> Socket:
    sock = Socket(server, protocol)
    stack.callback(sock.close)
    assert sock.init(key)["type"] == "connection_ack"
    return sock


def assert_refused(sock: Socket, code: int, reason: str) -> None:
    """Closed with ``code`` and ``reason``; legacy clients get a connection_error first."""
    got, messages = sock.closed()
    assert (got, reason in sock.last_reason) == (code, True), (got, sock.last_reason)
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
