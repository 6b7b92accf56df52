"""The GraphQL documents the CLI sends (names from schema.graphql, a public contract)."""

APP_FIELDS = "id name appName status sourceType buildType"
DEPLOYMENT_FIELDS = """id applicationId title status trigger createdAt startedAt finishedAt
  errorMessage queuePosition cancelRequested rollbackOfId"""
FINAL_FIELDS = f"{DEPLOYMENT_FIELDS} steps {{ step outcome durationMs message }}"

APPLICATION = f"query($id: ID!) {{ application(id: $id) {{ {APP_FIELDS} }} }}"

APPLICATIONS = f"""
query($after: String) {{ applications(first: 100, after: $after) {{
  edges {{ node {{ {APP_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""

LATEST = f"""
query($app: ID!) {{ deployments(applicationId: $app, first: 1) {{
  edges {{ node {{ {FINAL_FIELDS} }} }} }} }}"""

DEPLOYMENT = f"query($id: ID!) {{ deployment(id: $id) {{ {FINAL_FIELDS} }} }}"

DEPLOY = f"""
mutation($app: ID!) {{ deployApplication(applicationId: $app) {{ {DEPLOYMENT_FIELDS} }} }}"""

REDEPLOY = f"""
mutation($app: ID!) {{ redeployApplication(applicationId: $app) {{ {DEPLOYMENT_FIELDS} }} }}"""

ROLLBACK = f"""
mutation($id: ID!) {{ rollbackDeployment(deploymentId: $id) {{ {DEPLOYMENT_FIELDS} }} }}"""

CANCEL = f"""
mutation($app: ID!) {{ cancelDeployment(applicationId: $app) {{ {DEPLOYMENT_FIELDS} }} }}"""

LOG_PAGE = """
query($id: ID!, $after: Int!, $limit: Int!) { deployment(id: $id) {
  id logs(afterSeq: $after, limit: $limit) { seq timestamp stream step message } } }"""

QUEUE = """
query { deploymentQueue { state position deployment {
  id title status trigger createdAt startedAt application { id name } } } }"""

API_KEYS = "query { apiKeys { id name scopes prefix createdAt lastUsedAt expiresAt revokedAt } }"

REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"
