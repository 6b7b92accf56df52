"""The schema, composed from each domain's queries, mutations and subscriptions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.errors import SlipwayError
from app.graphql.api_keys.mutations import ApiKeyMutations
from app.graphql.api_keys.queries import ApiKeyQueries
from app.graphql.applications.mutations import ApplicationMutations
from app.graphql.applications.queries import ApplicationQueries
from app.graphql.cost import QueryCostLimiter
from app.graphql.deployments.mutations import DeploymentMutations
from app.graphql.deployments.queries import DeploymentQueries
from app.graphql.deployments.subscriptions import DeploymentSubscriptions
from app.graphql.errors import error_masking
from app.graphql.servers.mutations import ServerMutations
from app.graphql.servers.queries import ServerQueries
from app.graphql.sharing import SharingExecutionContext

Query = merge_types(
    "Query", (ApplicationQueries, DeploymentQueries, ServerQueries, ApiKeyQueries)
)
Mutation = merge_types(
    "Mutation", (ApplicationMutations, DeploymentMutations, ApiKeyMutations, ServerMutations)
)
Subscription = merge_types("Subscription", (DeploymentSubscriptions,))


class Schema(strawberry.Schema):
    """Expected errors (ours, validation) are answers, not server faults: log only the rest."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [e for e in errors if _unexpected(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def _unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, SlipwayError)


def build_schema() -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Clients send the same few documents: parse and validate each once, not per call.
        extensions=[
            error_masking,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            QueryCostLimiter,  # depth and cost, with the variables' values, before execution
        ],
        execution_context_class=SharingExecutionContext,
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
