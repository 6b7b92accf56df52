"""The two WebSocket subprotocols of /graphql (graphql-transport-ws, legacy graphql-ws).

Each handler authenticates the API key sent in ``connection_init`` (or the upgrade headers).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)

from app.auth.keys import Principal, authenticate, key_from_headers
from app.errors import Unauthenticated
from app.graphql.context import AppState, Context

UNAUTHORIZED = 4401


async def _principal(state: AppState, key: str | None) -> Principal | None:
    try:
        return await run_in_threadpool(authenticate, state.db, key)
    except Unauthenticated:
        return None


def _init_key(context: Context, payload: Any) -> str | None:
    if isinstance(payload, dict):
        for name in ("apiKey", "x-api-key", "authorization", "Authorization"):
            value = payload.get(name)
            if isinstance(value, str) and value:
                return value.removeprefix("Bearer ").strip()
    return key_from_headers(context.request.headers)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: an unknown key closes the socket with 4401."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        ctx: Context = self.context
        ctx.principal = await _principal(ctx.state, _init_key(ctx, message.get("payload")))
        if ctx.principal is None:
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized: API key required")
            return
        await super().handle_connection_init(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws: an unknown key gets ``connection_error`` then a 4401 close."""

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        ctx: Context = self.context
        ctx.principal = await _principal(ctx.state, _init_key(ctx, message.get("payload")))
        if ctx.principal is None:
            await self.send_message({"type": "connection_error", "payload": {"code": 4401}})
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized: API key required")
            return
        await super().handle_connection_init(message)
