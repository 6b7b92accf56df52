"""schema.graphql is what the code exports; a drift fails here."""

from pathlib import Path

from app.graphql.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), "run `slipway export-schema > schema.graphql` and commit"


def test_contract_names_are_present() -> None:
    sdl = export_sdl()
    for name in (
        "deployApplication(applicationId: ID!",
        "redeployApplication(applicationId: ID!",
        "deploymentLogs(deploymentId: ID!, afterSeq: Int = 0): [LogLine!]!",
        "deploymentStatus(deploymentId: ID!): Deployment!",
        "applicationStatus(applicationId: ID!): Application!",
        "deploymentQueue(serverId: ID = null): [QueueJob!]!",
        "createApiKey(name: String!, scopes: [Scope!]!, expiresAt: DateTime = null): "
        "CreatedApiKey!",
        "revokeApiKey(id: ID!): Boolean!",
        "apiKeys: [ApiKey!]!",
        "enum DeploymentStatus",
        "logs(afterSeq: Int = 0, limit: Int = 1000): [LogLine!]!",
        "deployments(applicationId: ID = null, status: [DeploymentStatus!] = null, first: Int = 20",
        "applications(first: Int = 50",
    ):
        assert name in sdl, name
