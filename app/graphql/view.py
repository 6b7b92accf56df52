"""The GraphQL endpoint: HTTP, HTTP streams (graphql-sse, multipart subscriptions), both
WebSocket subprotocols, GraphiQL; keys checked on each.

An HTTP request without a valid key is answered 401 before its body is read (only the
GraphiQL page loads without one); every refusal before GraphQL runs is JSON with an
``extensions.code``, like any GraphQL answer (see app.graphql.errors.http_error). Streams
are counted and re-checked as app.graphql.streams describes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.streaming import HTTPStreamTransport, MultipartSubscriptionTransport
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from app.auth.gate import admit
from app.auth.keys import Principal, key_from_headers
from app.graphql import graphiql
from app.graphql.context import AppState, Context
from app.graphql.errors import http_error
from app.graphql.http_input import decode_json, json_request, with_files
from app.graphql.streams import Positioned, ResumableSSETransport, Stream, rechecked
from app.graphql.uploads import UploadRequestAdapter
from app.graphql.websockets import LegacyWSHandler, TransportWSHandler, key_still_valid
from app.graphql.ws_limits import Limits, TooMany

PROTOCOLS = (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    GRAPHQL_SSE_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)


async def _principal(state: AppState, request: Request) -> Principal | None:
    """None without a valid key; RateLimited (429, see app.main) while the peer address is
    slowed for repeated refused keys."""
    address = request.client.host if request.client else None
    key = key_from_headers(request.headers)
    return await admit(state.db, state.throttle, key=key, address=address)


class _OriginRefusalWording(logging.Filter):
    """Strawberry's line for a refused WebSocket Origin names its own parameter; ours names
    the setting a Slipway user changes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Rejected WebSocket connection"):
            record.msg = (
                "refused a WebSocket from origin %r to host %r (403): allow it with "
                "SLIPWAY_CORS_ORIGINS"
            )
        return True


_ORIGIN_FILTER = _OriginRefusalWording()


class SlipwayGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    request_adapter_class = UploadRequestAdapter  # bounded bodies, uploads streamed to disk
    stream_transport_classes_by_protocol = {
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
        GRAPHQL_SSE_PROTOCOL: ResumableSSETransport,
    }

    state: AppState  # set by the app lifespan before the first request

    def __init__(self, schema: Any, **kwargs: Any) -> None:
        super().__init__(schema, subscription_protocols=PROTOCOLS, **kwargs)
        logging.getLogger("strawberry.ws").addFilter(_ORIGIN_FILTER)  # once: same object

    def encode_json(self, data: object) -> str | bytes:
        """A ``next`` message whose data is a shared result reuses its encoding."""
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and payload.keys() == {"data"}:
                body = self.state.shared.encoded(payload["data"])
                if body is not None:
                    msg_id = json.dumps(data["id"])
                    return f'{{"id":{msg_id},"type":"next","payload":{{"data":{body}}}}}'
        elif isinstance(data, dict) and data.keys() == {"data"}:  # an SSE or multipart event
            body = self.state.shared.encoded(data["data"])
            if body is not None:
                return f'{{"data":{body}}}'
        return super().encode_json(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        stream: Stream | None = None
        try:
            response = await self._refusal(request)
            if response is None and stream_transport(request.headers):
                stream, response = self._open_stream(request)
            response = response or await self.run(request)
        except HTTPException as exc:
            response = http_error(exc.status_code, exc.reason)
        try:
            await response(scope, receive, send)
        finally:
            if stream is not None:
                stream.close()

    def _open_stream(self, request: Request) -> tuple[Stream | None, Response | None]:
        """Count a stream against its key's and the process's caps, or a 429 refusal."""
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            return None, None  # the GraphiQL page: no stream
        stream = Stream(self.state.sockets, Limits.of(self.state.settings))
        try:
            stream.open(principal.key_id)
        except TooMany as exc:
            return None, http_error(429, str(exc))
        return stream, None

    async def _refusal(self, request: Request) -> Response | None:
        """401 for a request without a valid key, before its body is read (the GraphiQL page
        and methods answered 405 need none); the principal is kept for the context."""
        adapter = self.request_adapter_class(request)
        if not self.is_request_allowed(adapter) or self.should_render_graphql_ide(adapter):
            return None
        principal = await _principal(self.state, request)
        if principal is None:
            message = "an API key is required (x-api-key or Authorization: Bearer)"
            if key_from_headers(request.headers):
                message = "the API key is not valid"
            return http_error(401, message, {"WWW-Authenticate": 'Bearer realm="slipway"'})
        request.state.principal = principal
        limit = self.state.settings.max_query_bytes
        if len(request.scope.get("query_string", b"")) > limit:
            raise HTTPException(414, f"The query string may have at most {limit} bytes")
        return None

    async def render_graphql_ide(self, request: Request) -> Response:  # noqa: ARG002
        """Slipway's GraphiQL page, its assets served from the package (app.graphql.graphiql)."""
        return graphiql.page() if self.state.settings.graphiql else graphiql.turned_off()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        ctx = Context(state=self.state, request=request, response=response)
        if isinstance(request, Request):
            ctx.principal = getattr(request.state, "principal", None)
            request.state.context = ctx  # for the stream position of each event
        return ctx

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        ctx: Context | None = getattr(request.state, "context", None)
        if ctx is not None and ctx.stream_position is not None:
            return Positioned(response, ctx.stream_position)  # type: ignore[return-value]
        return response

    async def create_streaming_response(
        self,
        request: Request | WebSocket,
        stream: Callable[[], AsyncIterator[str]],
        sub_response: Response,
        headers: Mapping[str, str],
    ) -> Response:
        """The stream, ended when its key is revoked (checked every recheck interval)."""
        ctx: Context = request.state.context
        transport = stream_transport(request.headers)
        principal = ctx.principal
        key = key_from_headers(request.headers)
        if transport is not None and principal is not None and key is not None:
            interval = self.state.settings.ws_recheck_interval

            async def still_valid() -> bool:
                probe = lambda: key_still_valid(ctx, key)  # noqa: E731
                return await self.state.sockets.still_valid(
                    principal.key_id, probe, max_age=interval / 2
                )

            stream = rechecked(
                stream,  # type: ignore[arg-type]
                still_valid=still_valid,
                interval=interval,
                transport=transport,
                encode_json=self.encode_json_string,
            )
        return await super().create_streaming_response(request, stream, sub_response, headers)

    def parse_json(self, data: str | bytes) -> Any:
        """A JSON object (a list is a batch, refused as such); 400 for anything else."""
        return json_request(decode_json(data))

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """``variables=null`` in a GET query string means none, as in a JSON body."""
        kept = {k: v for k, v in params.items() if not (k in _JSON_PARAMS and v == "null")}
        return super().parse_query_params(kept)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        form = await request.get_form_data()  # refuses keys without DEPLOY before reading
        operations = form.form.get("operations", "{}")
        files_map = form.form.get("map", "{}")
        if isinstance(operations, str | bytes):
            operations = decode_json(operations)
        if isinstance(files_map, str | bytes):
            files_map = decode_json(files_map)
        return with_files(operations, files_map, form.files)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type == OperationType.SUBSCRIPTION
            ):
                raise HTTPException(400, SUBSCRIPTION_OVER_HTTP) from cause
            raise


_STREAM_TRANSPORTS = (ResumableSSETransport(), MultipartSubscriptionTransport())


def stream_transport(headers: Mapping[str, str]) -> HTTPStreamTransport | None:
    """The HTTP stream transport the request's ``Accept`` asks for (as Strawberry picks it:
    SSE first), or None for a plain request."""
    accept = headers.get("accept", "")
    return next((t for t in _STREAM_TRANSPORTS if t.accepts(accept)), None)


_JSON_PARAMS = ("variables", "extensions")
SUBSCRIPTION_OVER_HTTP = (
    "A subscription needs a streaming transport: send 'Accept: text/event-stream' (SSE) or "
    "'Accept: multipart/mixed;subscriptionSpec=1.0', or open a WebSocket to /graphql "
    "(graphql-transport-ws or graphql-ws)"
)
