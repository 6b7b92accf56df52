"""The two WebSocket subprotocols of /graphql (graphql-transport-ws, legacy graphql-ws).

Each socket is counted from its accept (SocketRegistry: caps per process, per address while
it waits for ``connection_init``, per API key after), must send ``connection_init`` within
``ws_init_timeout`` seconds, is authenticated by the key in that message (or the upgrade
headers, through app.auth.gate: refused keys count against the address), and has that key
re-checked every ``ws_recheck_interval`` seconds: a revoked or expired key closes it. A
message that is not a well-formed client message (ws_messages) closes it with 4400.

Both run queries, mutations and subscriptions (legacy graphql-ws too: Strawberry's own
handler refused anything but subscriptions).

Refusals use each protocol's vocabulary: graphql-transport-ws closes with a 44xx code (4400
bad message, 4401 unauthorized, 4408 init timeout, 4429 too many) or answers a refused
``subscribe`` with an ``error`` message; legacy graphql-ws sends ``connection_error`` (with
the same code and a message) before closing, and ``error`` for a refused ``start``. A full
server closes with 1013 (Try Again Later), which clients retry with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from typing import Any

from graphql import GraphQLError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from app.auth.gate import admit
from app.auth.keys import Principal, authenticate, key_from_headers
from app.errors import RateLimited, Unauthenticated
from app.graphql.context import Context
from app.graphql.document_limits import refusal, too_long
from app.graphql.ws_limits import Limits, Socket, TooMany
from app.graphql.ws_messages import malformed

log = logging.getLogger(__name__)

BAD_REQUEST = 4400
UNAUTHORIZED = 4401
INIT_TIMEOUT = 4408
TOO_MANY = 4429
TRY_AGAIN_LATER = 1013
ANY_OPERATION = (OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION)
LIMIT_CODE = RateLimited.code  # extensions.code of a refused subscribe/start
Refuse = Callable[[int, str], Awaitable[None]]


def _init_key(context: Context, payload: Any) -> str | None:
    if isinstance(payload, dict):
        for name in ("apiKey", "x-api-key", "authorization", "Authorization"):
            value = payload.get(name)
            if isinstance(value, str) and value:
                return value.removeprefix("Bearer ").strip()
    return key_from_headers(context.request.headers)


class _Guard:
    """One socket's place in the registry, its init deadline and its key re-checks."""

    def __init__(self, socket: Socket, context: Context, refuse: Refuse) -> None:
        self.socket = socket
        self.ctx = context
        self._refuse = refuse
        self.settings = context.state.settings
        self.limits = Limits.of(self.settings)
        self.registry = context.state.sockets
        client = context.request.client
        self.address = client.host if client else None
        self.init_received = False
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, body: Callable[[], Awaitable[None]], *, init_deadline: bool) -> None:
        """Count the socket while ``body`` serves it; refuse it when a cap is reached."""
        try:
            self.registry.open(self.socket, self.address, self.limits)
        except TooMany as exc:
            await self.refuse(TRY_AGAIN_LATER if exc.server_wide else TOO_MANY, str(exc))
            return
        if init_deadline:
            self._spawn(self._init_deadline())
        try:
            await body()
        except RecursionError:  # JSON nested past the decoder's depth: not a valid message
            await self.refuse(BAD_REQUEST, "WebSocket message must be valid JSON (too deep)")
        finally:
            for task in self._tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            self.registry.close(self.socket)

    async def init(self, payload: Any) -> Principal | None:
        """The principal of ``connection_init``; None once the socket has been refused."""
        self.init_received = True
        key = _init_key(self.ctx, payload)
        state = self.ctx.state
        if key is not None and not key.isascii():  # ours are; a lone surrogate cannot be hashed
            key = "?"  # refused (and counted) like any other unknown key
        try:
            principal = await admit(state.db, state.throttle, key=key, address=self.address)
        except RateLimited as exc:  # this address keeps sending refused keys
            await self.refuse(TOO_MANY, str(exc))
            return None
        if principal is None or key is None:
            await self.refuse(UNAUTHORIZED, "Unauthorized: API key required")
            return None
        try:
            self.registry.authenticated(self.socket, principal.key_id, self.limits)
        except TooMany as exc:
            await self.refuse(TOO_MANY, str(exc))
            return None
        self._spawn(self._recheck(principal.key_id, key))
        return principal

    def operation_refusal(self) -> str | None:
        """Why one more operation is refused, or None when it may start."""
        try:
            self.registry.check_operation(self.socket, self.limits)
        except TooMany as exc:
            return str(exc)
        return None

    async def refuse(self, code: int, reason: str) -> None:
        """Close the socket with ``code``, unless it is already closed."""
        ws = self.ctx.request
        if isinstance(ws, WebSocket) and ws.application_state == WebSocketState.DISCONNECTED:
            return
        with suppress(WebSocketDisconnected, WebSocketDisconnect, RuntimeError):
            await self._refuse(code, reason)

    def _spawn(self, work: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))

    async def _init_deadline(self) -> None:
        await asyncio.sleep(self.settings.ws_init_timeout)
        if not self.init_received:
            await self.refuse(INIT_TIMEOUT, "Connection initialisation timeout")

    async def _recheck(self, key_id: str, key: str) -> None:
        interval = self.settings.ws_recheck_interval
        while True:
            await asyncio.sleep(interval)
            probe = lambda: key_still_valid(self.ctx, key)  # noqa: E731
            if not await self.registry.still_valid(key_id, probe, max_age=interval / 2):
                await self.refuse(UNAUTHORIZED, "Unauthorized: API key revoked or expired")
                return


async def key_still_valid(ctx: Context, key: str) -> bool:
    """False once the key is refused; a failing database keeps the socket (logged)."""
    try:
        await run_in_threadpool(authenticate, ctx.state.db, key)
    except Unauthenticated:
        ctx.state.throttle.forget(key)
        return False
    except Exception as exc:  # noqa: BLE001  # a database outage must not drop every socket
        log.warning("could not re-check a WebSocket's API key: %s", exc)
    return True


_GONE = (WebSocketDisconnected, WebSocketDisconnect)  # sending to a client that left


def _limit_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": LIMIT_CODE})


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with Slipway's keys and limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = _Guard(self, self.context, self.websocket.close)
        self.connection_init_wait_timeout = timedelta(seconds=self.guard.settings.ws_init_timeout)

    def active_operations(self) -> int:
        return len(self.operations)

    async def handle_message(self, message: Message) -> None:
        if reason := malformed(message):
            await self.handle_invalid_message(reason)  # 4400
            return
        await super().handle_message(message)

    async def handle(self) -> None:
        await self.guard.run(super().handle, init_deadline=False)  # Strawberry times init

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if not (self.connection_init_received or self.connection_timed_out):
            principal = await self.guard.init(message.get("payload"))
            if principal is None:
                return
            self.context.principal = principal
        await super().handle_connection_init(message)  # a second init: 4429 there

    async def handle_task_exception(self, error: Exception) -> None:
        """A client that went away mid-stream is ordinary: one debug line, no traceback."""
        if isinstance(error, _GONE):
            log.debug("WebSocket client left during an operation: %r", error)
            return
        await super().handle_task_exception(error)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            if reason := too_long(message["payload"].get("query"), self.context):
                error = refusal(reason).formatted
                await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
                return
            if refusal_reason := self.guard.operation_refusal():
                error = _limit_error(refusal_reason).formatted
                await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
                return
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws with Slipway's keys and limits, and the init timeout it lacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = _Guard(self, self.context, self._close)

    def active_operations(self) -> int:
        return len(self.tasks)

    async def handle_message(self, message: OperationMessage) -> None:
        if reason := malformed(message):
            await self.guard.refuse(BAD_REQUEST, reason)
            return
        await super().handle_message(message)

    async def handle(self) -> None:
        await self.guard.run(super().handle, init_deadline=True)

    async def _close(self, code: int, reason: str) -> None:
        """connection_error first: legacy clients report its payload, not the close code."""
        await self.send_message(
            {"type": "connection_error", "payload": {"message": reason, "code": code}}
        )
        await self.websocket.close(code=code, reason=reason)

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        if self.guard.init_received:
            await self.guard.refuse(TOO_MANY, "Too many initialisation requests")
            return
        principal = await self.guard.init(message.get("payload"))
        if principal is None:
            return
        self.context.principal = principal
        await super().handle_connection_init(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """As Strawberry's, but any operation runs (queries and mutations answer one
        ``data`` then ``complete``: gql and Apollo's old client send them here), and a
        client that went away mid-stream ends the task quietly (nobody awaits it: it was
        logged as "Task exception was never retrieved")."""
        try:
            result_source = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
                allowed_operation_types=ANY_OPERATION,
            )
            self.subscriptions[operation_id] = result_source
            first = True
            async for result in result_source:
                if first and isinstance(result, PreExecutionError) and result.errors:
                    error = result.errors[0].formatted
                    await self.send_message({"type": "error", "id": operation_id, "payload": error})
                    return
                await self.send_data_message(result, operation_id)  # type: ignore[arg-type]  # no @defer here
                first = False
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            with suppress(*_GONE):
                await self.send_message({"type": "complete", "id": operation_id})
        except _GONE as exc:
            log.debug("WebSocket client left during operation %s: %r", operation_id, exc)
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.tasks:
            if reason := too_long(message["payload"].get("query"), self.context):
                error = refusal(reason).formatted
                await self.send_message({"type": "error", "id": message["id"], "payload": error})
                return
            if refusal_reason := self.guard.operation_refusal():
                error = _limit_error(refusal_reason).formatted
                await self.send_message({"type": "error", "id": message["id"], "payload": error})
                return
        await super().handle_start(message)
