"""The GraphQL endpoint: HTTP, both WebSocket subprotocols, GraphiQL; keys checked on each."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.auth.gate import admit
from app.auth.keys import Principal, key_from_headers
from app.graphql.context import AppState, Context
from app.graphql.uploads import UploadRequestAdapter
from app.graphql.websockets import LegacyWSHandler, TransportWSHandler


async def _principal(state: AppState, request: Request) -> Principal | None:
    """None without a valid key; RateLimited (429, see app.main) while the peer address is
    slowed for repeated refused keys."""
    address = request.client.host if request.client else None
    key = key_from_headers(request.headers)
    return await admit(state.db, state.throttle, key=key, address=address)


class SlipwayGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    request_adapter_class = UploadRequestAdapter  # bounded bodies, uploads streamed to disk

    state: AppState  # set by the app lifespan before the first request

    def encode_json(self, data: object) -> str | bytes:
        """A ``next`` message whose data is a shared result reuses its encoding."""
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and payload.keys() == {"data"}:
                body = self.state.shared.encoded(payload["data"])
                if body is not None:
                    msg_id = json.dumps(data["id"])
                    return f'{{"id":{msg_id},"type":"next","payload":{{"data":{body}}}}}'
        return super().encode_json(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        ctx = Context(state=self.state, request=request, response=response)
        if isinstance(request, Request):
            ctx.principal = await _principal(self.state, request)
        return ctx
