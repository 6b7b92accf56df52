"""Follow ``deploymentLogs`` over graphql-transport-ws (websockets), surviving dropped
connections: after a drop it subscribes again with ``afterSeq`` = the last seq handed on, so
no line is lost or repeated (the server replays its log file after that seq)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from app.client.connection import Connection
from app.client.errors import ClientError, from_graphql

LOGS = """
subscription($id: ID!, $after: Int) {
  deploymentLogs(deploymentId: $id, afterSeq: $after) { seq timestamp stream step message } }"""

PROTOCOL = "graphql-transport-ws"
FATAL_CLOSES = {4400: "the server refused a message", 4401: "the server refused the API key"}
Batch = list[dict[str, Any]]


class Dropped(Exception):
    """The connection ended before the subscription completed: try again."""


class LogFollower:
    """``run()`` hands every line after ``after_seq`` to ``on_lines`` once, in seq order.

    ``on_retry(reason)`` is told about each reconnection; after ``give_up_after`` seconds
    without a connection that delivers, the follow fails with the last reason.
    """

    def __init__(
        self,
        connection: Connection,
        deployment_id: str,
        *,
        after_seq: int,
        on_lines: Callable[[Batch], None],
        on_retry: Callable[[str], None] = lambda _: None,
        give_up_after: float = 300.0,
    ) -> None:
        self.connection = connection
        self.deployment_id = deployment_id
        self.last_seq = after_seq
        self.on_lines = on_lines
        self.on_retry = on_retry
        self.give_up_after = give_up_after
        self.connections = 0

    def run(self) -> int:
        """Until the subscription completes (the deployment ended); the last seq handed on."""
        delay, since = 0.2, time.monotonic()
        while True:
            seen = self.last_seq
            try:
                self._session()
                return self.last_seq
            except BrokenPipeError:  # our reader went away (`| head`), not the server
                raise
            except (Dropped, ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                reason = _describe(exc)
            if self.last_seq != seen:  # that connection delivered: start counting again
                delay, since = 0.2, time.monotonic()
            if time.monotonic() - since > self.give_up_after:
                raise ClientError(
                    f"lost the log stream of deployment {self.deployment_id} for more than "
                    f"{self.give_up_after:.0f} s: {reason}"
                )
            self.on_retry(reason)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _session(self) -> None:
        try:
            ws = connect(
                self.connection.ws_url,
                subprotocols=[PROTOCOL],  # type: ignore[list-item]
                max_size=None,
                open_timeout=10,
            )
        except InvalidURI as exc:
            raise ClientError(f"not a WebSocket URL: {self.connection.ws_url}") from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:  # a wrong URL or origin: retrying won't help
                raise ClientError(
                    f"the server at {self.connection.ws_url} refused the WebSocket (HTTP {status})"
                ) from exc
            raise
        with ws:
            self.connections += 1
            init = {"type": "connection_init", "payload": {"apiKey": self.connection.api_key}}
            ws.send(json.dumps(init))
            ack = _receive(ws, timeout=15)
            if ack.get("type") != "connection_ack":
                raise Dropped(f"expected connection_ack, got {ack.get('type')!r}")
            variables = {"id": self.deployment_id, "after": self.last_seq}
            subscribe = {"query": LOGS, "variables": variables}
            ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            while True:
                message = _receive(ws, timeout=None)
                kind = message.get("type")
                if kind == "next":
                    self._take(message.get("payload") or {})
                elif kind == "complete":
                    return
                elif kind == "error":
                    payload = message.get("payload")
                    raise from_graphql(payload if isinstance(payload, list) else [payload or {}])
                elif kind == "ping":
                    ws.send(json.dumps({"type": "pong"}))

    def _take(self, payload: dict[str, Any]) -> None:
        if payload.get("errors"):
            raise from_graphql(payload["errors"])
        lines: Batch = (payload.get("data") or {}).get("deploymentLogs") or []
        if not lines:
            return
        # In seq order from the server: only a batch overlapping what was handed on (a replay
        # racing the live tail) needs filtering line by line.
        fresh = (
            lines
            if lines[0]["seq"] > self.last_seq
            else [line for line in lines if line["seq"] > self.last_seq]
        )
        if fresh:
            self.on_lines(fresh)
            self.last_seq = fresh[-1]["seq"]


def _receive(ws: ClientConnection, *, timeout: float | None) -> dict[str, Any]:
    try:
        raw = ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        close = exc.rcvd
        if close is not None and close.code in FATAL_CLOSES:
            detail = f": {close.reason}" if close.reason else ""
            raise ClientError(f"{FATAL_CLOSES[close.code]}{detail}") from exc
        raise
    message = json.loads(raw)
    if not isinstance(message, dict):
        raise Dropped("the server sent a message that is not an object")
    return message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        close = exc.rcvd
        if close is None:
            return "the connection dropped"
        reason = f" {close.reason}" if close.reason else ""
        return f"the server closed the connection ({close.code}{reason})"
    return str(exc) or exc.__class__.__name__
