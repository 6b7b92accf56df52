"""The schema, composed from each domain's queries, mutations and subscriptions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from app.graphql.api_keys.mutations import ApiKeyMutations
from app.graphql.api_keys.queries import ApiKeyQueries
from app.graphql.applications.mutations import ApplicationMutations
from app.graphql.applications.queries import ApplicationQueries
from app.graphql.applications.subscriptions import ApplicationSubscriptions
from app.graphql.cost import QueryCostLimiter
from app.graphql.deployments.mutations import DeploymentMutations
from app.graphql.deployments.queries import DeploymentQueries
from app.graphql.deployments.subscriptions import DeploymentSubscriptions
from app.graphql.distinct import distinct, shared_of
from app.graphql.document_limits import limit_extensions
from app.graphql.errors import error_masking, is_unexpected
from app.graphql.node import NodeQueries
from app.graphql.notifications.mutations import NotificationMutations
from app.graphql.notifications.queries import NotificationQueries
from app.graphql.registries.mutations import RegistryMutations
from app.graphql.registries.queries import RegistryQueries
from app.graphql.servers.mutations import ServerMutations
from app.graphql.servers.queries import ServerQueries
from app.graphql.sharing import SharingExecutionContext
from app.metrics import instruments as metrics

Query = merge_types(
    "Query",
    (
        ApplicationQueries,
        DeploymentQueries,
        ServerQueries,
        RegistryQueries,
        NotificationQueries,
        ApiKeyQueries,
        NodeQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ApplicationMutations,
        DeploymentMutations,
        ApiKeyMutations,
        ServerMutations,
        RegistryMutations,
        NotificationMutations,
    ),
)
Subscription = merge_types("Subscription", (DeploymentSubscriptions, ApplicationSubscriptions))


class Schema(strawberry.Schema):
    """Expected errors (ours, validation) are answers, not server faults: log only the rest."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [e for e in errors if is_unexpected(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Never a subscription: it streams over a WebSocket (``subscribe``); executed as a
        query it would fail as an internal error. The HTTP view answers 400 instead."""
        allowed = set(allowed_operation_types or OperationType) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        """Every streaming transport (both WebSocket protocols, SSE, multipart) sends an
        object result only when it differs from the one before (``distinct``)."""
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )
        shared = shared_of(context_value)
        if isinstance(results, AsyncGenerator):  # not an error result: a stream, counted
            results = metrics.subscribed(results, transport_of(context_value))
        return results if shared is None else distinct(results, shared)


def transport_of(context: Any) -> str:
    """The streaming transport of an operation's context, as ``slipway_subscribers`` says."""
    request = getattr(context, "request", None)
    if isinstance(request, WebSocket):
        return "websocket"
    accept = request.headers.get("accept", "") if isinstance(request, Request) else ""
    return "sse" if "text/event-stream" in accept else "multipart"


def build_schema() -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            error_masking,
            # Bounded documents; short ones parsed and validated once, not per call.
            *limit_extensions(),
            QueryCostLimiter,  # depth and cost, with the variables' values, before execution
        ],
        execution_context_class=SharingExecutionContext,
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
