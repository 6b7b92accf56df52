"""The GraphQL documents the tests send, written as a client would."""

CREATE_APP = """
mutation($input: CreateApplicationInput!) {
  createApplication(input: $input) { id name appName status sourceType buildType repository envKeys
    ports { publishedPort targetPort publishMode } }
}"""

DEPLOY = """
mutation($id: ID!) { deployApplication(applicationId: $id) { id status title logPath trigger } }"""

REDEPLOY = """
mutation($id: ID!) { redeployApplication(applicationId: $id) { id status trigger } }"""

DEPLOYMENT = """
query($id: ID!) { deployment(id: $id) { id status errorMessage commitSha imageRef logPath pid
  startedAt finishedAt application { id status appName }
  steps { step outcome durationMs }
  logs(afterSeq: 0, limit: 10000) { seq step stream message } } }"""

DEPLOYMENTS = """
query($app: ID, $status: [DeploymentStatus!], $first: Int, $after: String) {
  deployments(applicationId: $app, status: $status, first: $first, after: $after) {
    edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }"""

LOGS_SUB = """
subscription($id: ID!, $after: Int) {
  deploymentLogs(deploymentId: $id, afterSeq: $after) { seq timestamp stream step message } }"""

STATUS_SUB = """
subscription($id: ID!) { deploymentStatus(deploymentId: $id) { id status errorMessage } }"""

APP_STATUS_SUB = """
subscription($id: ID!) { applicationStatus(applicationId: $id) { id status } }"""
