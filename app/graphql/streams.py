"""GraphQL over HTTP streams: graphql-sse (distinct connections) and multipart subscriptions.

A request whose ``Accept`` names ``text/event-stream`` (any operation) or
``multipart/mixed;subscriptionSpec=1.0`` (subscriptions) is answered as a stream by
Strawberry's transports, after the same key check as any HTTP request (401 before the body
is read). Slipway adds three things:

- **Resumable SSE**: an event carries ``id: <position>`` when its operation set one
  (``deploymentLogs``: the last seq of the batch, ``Context.stream_position``); a client
  that reconnects with ``Last-Event-ID`` (what EventSource sends back) resumes after it
  (``last_event_id``).
- **Caps**: an open stream is one connection and one running operation of its key in the
  process's ``SocketRegistry``, so streams and WebSockets share
  ``SLIPWAY_WS_MAX_CONNECTIONS(_PER_KEY)`` and ``SLIPWAY_WS_MAX_SUBSCRIPTIONS(_PER_KEY)``:
  one too many is answered 429 before anything runs.
- **Key re-check**: every ``SLIPWAY_WS_RECHECK_INTERVAL`` (looked at when the stream sends
  a message or a heartbeat) the key is checked again; a revoked or expired key's stream
  ends with an ``UNAUTHENTICATED`` error and ``complete``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

from strawberry.http import GraphQLHTTPResponse
from strawberry.http.streaming import HTTPStreamTransport, JSONEncoder, SSETransport

from app.errors import BadInput
from app.graphql.ws_limits import Limits, SocketRegistry

MAX_POSITION = 2**63 - 1
REVOKED = "the API key was revoked or has expired"


class Positioned(dict[str, Any]):
    """A streamed response and the stream position it brings the client to."""

    def __init__(self, response: GraphQLHTTPResponse, position: int) -> None:
        super().__init__(response)
        self.position = position


class ResumableSSETransport(SSETransport):
    """graphql-sse events with an ``id:`` line when the response has a position."""

    def encode_next(self, response: GraphQLHTTPResponse, encode_json: JSONEncoder) -> str:
        event = super().encode_next(response, encode_json)
        position = getattr(response, "position", None)
        return event if position is None else f"id: {position}\r\n{event}"


def last_event_id(headers: Mapping[str, str]) -> int:
    """The position named by ``Last-Event-ID`` (0 without one); BadInput if not a position."""
    value = headers.get("last-event-id", "").strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_POSITION:
        raise BadInput("Last-Event-ID must be the id of an event this server sent (a seq)")
    return int(value)


class Stream:
    """One open HTTP stream in the registry: one connection and one operation of its key."""

    def __init__(self, registry: SocketRegistry, limits: Limits) -> None:
        self._registry = registry
        self._limits = limits
        self._running = 0

    def active_operations(self) -> int:
        return self._running

    def open(self, key_id: str) -> None:
        """Count the stream; TooMany (nothing counted) when a cap is reached."""
        try:
            self._registry.open(self, None, self._limits)
            self._registry.authenticated(self, key_id, self._limits)
            self._registry.check_operation(self, self._limits)
        except BaseException:
            self.close()
            raise
        self._running = 1

    def close(self) -> None:
        self._running = 0
        self._registry.close(self)


def rechecked(
    stream: Callable[[], AsyncGenerator[str, None]],
    *,
    still_valid: Callable[[], Awaitable[bool]],
    interval: float,
    transport: HTTPStreamTransport,
    encode_json: JSONEncoder,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], AsyncGenerator[str, None]]:
    """``stream`` that ends with an UNAUTHENTICATED error once ``still_valid()`` says no,
    asked at the first message or heartbeat ``interval`` seconds after the last time."""

    async def guarded() -> AsyncGenerator[str, None]:
        checked = clock()
        async with aclosing(stream()) as chunks:
            async for chunk in chunks:
                if clock() - checked >= interval:
                    checked = clock()
                    if not await still_valid():
                        error = {"message": REVOKED, "extensions": {"code": "UNAUTHENTICATED"}}
                        revoked: GraphQLHTTPResponse = {"data": None, "errors": [error]}
                        yield transport.encode_next(revoked, encode_json)
                        yield transport.encode_complete()
                        return
                yield chunk

    return guarded
