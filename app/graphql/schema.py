"""The schema, composed from each domain's queries, mutations and subscriptions."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from app.graphql.api_keys.mutations import ApiKeyMutations
from app.graphql.applications.mutations import ApplicationMutations
from app.graphql.applications.queries import ApplicationQueries
from app.graphql.deployments.mutations import DeploymentMutations
from app.graphql.deployments.queries import DeploymentQueries
from app.graphql.deployments.subscriptions import DeploymentSubscriptions
from app.graphql.errors import error_masking

Query = merge_types("Query", (ApplicationQueries, DeploymentQueries))
Mutation = merge_types("Mutation", (ApplicationMutations, DeploymentMutations, ApiKeyMutations))
Subscription = merge_types("Subscription", (DeploymentSubscriptions,))


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[error_masking],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
