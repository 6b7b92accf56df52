"""The API end to end over real HTTP/WebSocket, with fake git/build/runtime adapters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import GraphQLError, Server
from tests.e2e.queries import CREATE_APP, DEPLOY, DEPLOYMENT, DEPLOYMENTS, REDEPLOY, STATUS_SUB
from tests.support.git_remotes import make_key


def test_deploy_runs_the_pipeline_and_records_it(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app = client(CREATE_APP, input=GIT_APP(env=[{"key": "TOKEN", "value": "s3cr3t-v4lue"}]))
    app = app["createApplication"]
    assert app["status"] == "IDLE" and app["envKeys"] == ["TOKEN"]
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    assert dep["status"] in {"QUEUED", "RUNNING"} and dep["trigger"] == "MANUAL"
    done = wait_finished(client, dep["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert done["commitSha"] == fakes.git.sha
    assert done["imageRef"] == f"slipway/{app['appName']}:{dep['id']}"
    assert done["application"]["status"] == "DONE"
    assert [s["step"] for s in done["steps"]] == [
        "FETCH_SOURCE",
        "BUILD_IMAGE",
        "RELEASE",
        "VERIFY_HEALTH",
    ]
    assert all(s["outcome"] == "DONE" and s["durationMs"] >= 0 for s in done["steps"])
    seqs = [line["seq"] for line in done["logs"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert Path(done["logPath"]).is_file()
    released = fakes.runtime.released[-1]
    assert released.env == {"TOKEN": "s3cr3t-v4lue"} and released.image == done["imageRef"]
    assert done["pid"] is None


def test_env_values_are_masked_in_logs_and_never_returned(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    secret = "hunter2-very-secret"
    app = client(CREATE_APP, input=GIT_APP(env=[{"key": "PASSWORD", "value": secret}]))
    app_id = app["createApplication"]["id"]
    fakes.builder.fail = f"could not log in with {secret}"
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    done = wait_finished(client, dep["id"])
    assert done["status"] == "ERROR"
    assert secret not in done["errorMessage"] and "********" in done["errorMessage"]
    everything = client.http.post(
        client.url, json={"query": "{ applications { edges { node { envKeys } } } }"}
    ).text
    assert secret not in everything
    assert secret not in Path(done["logPath"]).read_text()
    db_file = fake_server.settings.data_dir / "slipway.db"
    assert secret.encode() not in db_file.read_bytes(), "env values are encrypted at rest"
    assert any("********" in line["message"] for line in done["logs"])


def test_failed_build_is_error_with_reason(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.fail = "docker build failed: exit code 3"
    done = wait_finished(client, client(DEPLOY, id=app_id)["deployApplication"]["id"])
    assert done["status"] == "ERROR" and "exit code 3" in done["errorMessage"]
    assert [(s["step"], s["outcome"]) for s in done["steps"]][-1] == ("BUILD_IMAGE", "ERROR")
    assert any("exit code 3" in line["message"] for line in done["logs"])
    assert done["application"]["status"] == "ERROR"


def test_redeploy_reuses_the_fetched_source(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    first = wait_finished(client, client(DEPLOY, id=app_id)["deployApplication"]["id"])
    assert first["status"] == "DONE"
    again = client(REDEPLOY, id=app_id)["redeployApplication"]
    assert again["trigger"] == "REBUILD"
    second = wait_finished(client, again["id"])
    assert second["status"] == "DONE", second["errorMessage"]
    assert len(fakes.git.clones) == 1, "a rebuild must not fetch"
    assert second["commitSha"] == first["commitSha"]
    assert any("no fetch" in line["message"] for line in second["logs"])


def test_redeploy_before_any_fetch_is_an_error(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    done = wait_finished(client, client(REDEPLOY, id=app_id)["redeployApplication"]["id"])
    assert done["status"] == "ERROR" and "deploy first" in done["errorMessage"]


def test_deployments_of_one_app_run_one_at_a_time_in_order(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.delay_s = 0.2
    first = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    deadline = time.monotonic() + 10
    while client(DEPLOYMENT, id=first)["deployment"]["status"] == "QUEUED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # Queued behind it: a rebuild, then a deploy (not equal to each other: both queue).
    ids = [
        first,
        client(REDEPLOY, id=app_id)["redeployApplication"]["id"],
        client(DEPLOY, id=app_id)["deployApplication"]["id"],
    ]
    again = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    assert again == ids[2], "an equal request while one is queued returns the queued one"
    finished = [wait_finished(client, i) for i in ids]
    assert [d["status"] for d in finished] == ["DONE"] * 3
    starts = [d["startedAt"] for d in finished]
    ends = [d["finishedAt"] for d in finished]
    assert starts == sorted(starts)
    assert all(ends[i] <= starts[i + 1] for i in range(2)), "deployments overlapped"
    page = client(DEPLOYMENTS, app=app_id, first=2)["deployments"]
    assert [e["node"]["id"] for e in page["edges"]] == ids[::-1][:2]
    assert page["pageInfo"]["hasNextPage"]
    rest = client(DEPLOYMENTS, app=app_id, first=2, after=page["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["deployments"]["edges"]] == [ids[0]]
    only_done = client(DEPLOYMENTS, app=app_id, status=["ERROR"])["deployments"]["edges"]
    assert only_done == []


def test_status_subscription_sees_every_state_then_completes(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 20, 0.05
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    sub = fake_server.subscribe(STATUS_SUB, id=dep["id"])
    seen: list[str] = []
    try:
        for data in sub.messages(timeout=30):
            seen.append(data["deploymentStatus"]["status"])
    finally:
        sub.close()
    assert seen[0] in {"QUEUED", "RUNNING"}
    assert seen[-1] in {"DONE", "ERROR", "CANCELLED"}
    assert "RUNNING" in seen


def test_status_subscription_sends_each_step_as_it_ends(fake_server: Server, fakes: Fakes) -> None:
    """The WebSocket's context outlives one event: the steps must not come from its cache."""
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 20, 0.05
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    sub = fake_server.subscribe(
        "subscription($id: ID!) { deploymentStatus(deploymentId: $id) {"
        " status steps { step outcome } } }",
        id=dep["id"],
    )
    seen: list[dict[str, Any]] = []
    try:
        seen = [data["deploymentStatus"] for data in sub.messages(timeout=30)]
    finally:
        sub.close()
    final = client(DEPLOYMENT, id=dep["id"])["deployment"]["steps"]
    assert seen[-1]["status"] == "DONE"
    assert seen[-1]["steps"] == [{"step": s["step"], "outcome": s["outcome"]} for s in final]
    assert [s["step"] for s in final] == ["FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH"]
    counts = [len(m["steps"]) for m in seen]
    assert counts == sorted(counts) and counts[0] < counts[-1], seen  # they grew while it ran


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"repository": "ext::sh -c touch% /tmp/pwned"}, "repository"),
        ({"repository": "--upload-pack=touch /tmp/x"}, "repository"),
        ({"repository": "not a url"}, "repository"),
        ({"branch": "--output=/tmp/x"}, "branch"),
        ({"branch": "main..evil"}, "branch"),
        ({"dockerfile": "../../etc/passwd"}, "dockerfile"),
        ({"dockerfile": "/etc/passwd"}, "dockerfile"),
        ({"env": [{"key": "1BAD", "value": "x"}]}, "env"),
        ({"env": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]}, "twice"),
        ({"ports": [{"publishedPort": 0, "targetPort": 80}]}, "publishedPort"),
        ({"ports": [{"publishedPort": 80, "targetPort": 70000}]}, "targetPort"),
        (
            {
                "ports": [
                    {"publishedPort": 80, "targetPort": 80},
                    {"publishedPort": 80, "targetPort": 81},
                ]
            },
            "twice",
        ),
        ({"repository": None}, "repository"),
    ],
)
def test_bad_input_is_rejected_and_changes_nothing(
    fake_server: Server, patch: dict[str, object], reason: str
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    payload = {k: v for k, v in {**GIT_APP(), **patch}.items() if v is not None}
    with pytest.raises(GraphQLError) as err:
        client(CREATE_APP, input=payload)
    assert err.value.codes == ["BAD_USER_INPUT"]
    assert reason.lower() in err.value.errors[0]["message"].lower()
    listed = client("{ applications { edges { node { id } } } }")["applications"]["edges"]
    assert listed == []


UPDATE = """
mutation($id: ID!, $input: UpdateApplicationInput!) {
  updateApplication(id: $id, input: $input) { id name envKeys replicas memoryLimitMb
    ports { publishedPort } } }"""
QUEUE = "{ deploymentQueue { state position deployment { id status queuePosition } } }"


def test_update_validates_then_applies(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    with pytest.raises(GraphQLError) as err:
        client(
            UPDATE,
            id=app_id,
            input={"replicas": 2, "ports": [{"publishedPort": 0, "targetPort": 1}]},
        )
    assert err.value.codes == ["BAD_USER_INPUT"]
    unchanged = client(UPDATE, id=app_id, input={})["updateApplication"]
    assert unchanged["replicas"] == 1, "a rejected update changes nothing"
    updated = client(
        UPDATE,
        id=app_id,
        input={
            "name": "renamed",
            "replicas": 2,
            "memoryLimitMb": 64,
            "env": [{"key": "B", "value": "2"}, {"key": "A", "value": "1"}],
        },
    )["updateApplication"]
    assert updated == {
        "id": app_id,
        "name": "renamed",
        "envKeys": ["A", "B"],
        "replicas": 2,
        "memoryLimitMb": 64,
        "ports": [],
    }
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    spec = fakes.runtime.released[-1]
    assert spec.replicas == 2 and spec.memory_limit == 64 * 1024 * 1024
    assert spec.env == {"A": "1", "B": "2"}


def test_delete_refuses_while_active_then_removes(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 40, 0.05
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    with pytest.raises(GraphQLError) as err:
        client("mutation($id: ID!) { deleteApplication(id: $id) }", id=app_id)
    assert err.value.codes == ["CONFLICT"]
    wait_finished(client, dep["id"])
    assert client("mutation($id: ID!) { deleteApplication(id: $id) }", id=app_id)
    assert client("query($id: ID!) { application(id: $id) { id } }", id=app_id) == {
        "application": None
    }
    assert client("query($id: ID!) { deployment(id: $id) { id } }", id=dep["id"]) == {
        "deployment": None
    }


def test_queue_shows_running_and_waiting_in_order(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 40, 0.05
    ids = [client(DEPLOY, id=app_id)["deployApplication"]["id"]]
    ids.append(client(REDEPLOY, id=app_id)["redeployApplication"]["id"])
    ids.append(client(DEPLOY, id=app_id)["deployApplication"]["id"])
    deadline = time.monotonic() + 10
    while True:
        queue = [j for j in client(QUEUE)["deploymentQueue"] if j["deployment"]["id"] in ids]
        if queue and queue[0]["state"] == "ACTIVE":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [j["deployment"]["id"] for j in queue] == ids
    assert [(j["state"], j["position"]) for j in queue] == [
        ("ACTIVE", None),
        ("WAITING", 1),
        ("WAITING", 2),
    ]
    assert [j["deployment"]["queuePosition"] for j in queue] == [None, 1, 2]
    for dep_id in ids:
        wait_finished(client, dep_id)
    done = [j for j in client(QUEUE)["deploymentQueue"] if j["deployment"]["id"] in ids]
    assert sorted(j["deployment"]["id"] for j in done) == sorted(ids)
    assert {j["state"] for j in done} == {"COMPLETED"}


def test_application_status_follows_its_deployments(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 10, 0.05
    sub = fake_server.subscribe(
        "subscription($id: ID!) { applicationStatus(applicationId: $id) { status } }", id=app_id
    )
    seen: list[str] = []
    try:
        messages = sub.messages(timeout=30)
        seen.append(next(messages)["applicationStatus"]["status"])
        dep = client(DEPLOY, id=app_id)["deployApplication"]
        for data in messages:
            seen.append(data["applicationStatus"]["status"])
            if seen[-1] == "DONE":
                break
    finally:
        sub.close()
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    assert seen[0] == "IDLE" and "RUNNING" in seen and seen[-1] == "DONE"


def test_source_secrets_are_write_only_and_encrypted_at_rest(
    fake_server: Server, tmp_path: Path
) -> None:
    """ssh keys, registry passwords, preview env values and webhook secrets: accepted,
    never returned by any query, and not in the database file in clear."""
    client = fake_server.client(Scope.DEPLOY)
    key = make_key(tmp_path)
    key_body = key.private.splitlines()[1]  # a line of the base64 body
    git = client(
        CREATE_APP,
        input=GIT_APP(
            repository="ssh://git@example.invalid/acme/web.git",
            sshKey=key.private,
            previewEnabled=True,
            previewEnv=[{"key": "API_TOKEN", "value": "preview-s3cret-v4lue"}],
        ),
    )["createApplication"]
    image = client(
        CREATE_APP,
        input={
            "name": "img",
            "sourceType": "DOCKER",
            "dockerImage": "127.0.0.1:5000/acme/web:1",
            "registryUsername": "deployer",
            "registryPassword": "registry-s3cret-pw",
        },
    )["createApplication"]
    hook_secret = client(
        "mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }", id=git["id"]
    )["regenerateWebhookSecret"]
    fields = "hasSshKey hasRegistryPassword hasPreviewEnv hasWebhookSecret knownHosts"
    everything = client.http.post(
        client.url,
        json={
            "query": f"{{ applications {{ edges {{ node {{ {fields} registryUsername }} }} }} }}"
        },
    ).text
    flags = {
        app_id: client(f'{{ application(id: "{app_id}") {{ {fields} }} }}')["application"]
        for app_id in (git["id"], image["id"])
    }
    assert flags[git["id"]] == {
        "hasSshKey": True,
        "hasRegistryPassword": False,
        "hasPreviewEnv": True,
        "hasWebhookSecret": True,
        "knownHosts": None,
    }
    assert flags[image["id"]]["hasRegistryPassword"] is True
    db = (fake_server.settings.data_dir / "slipway.db").read_bytes()
    for secret in (key_body, "preview-s3cret-v4lue", "registry-s3cret-pw", hook_secret):
        assert secret not in everything, "a secret came back in a query"
        assert secret.encode() not in db, "a secret is in the database in clear"
    assert "deployer" in everything, "the registry user is not a secret"

    bad = client.raw(CREATE_APP, input=GIT_APP(sshKey="not a key"))
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "sshKey" in bad["errors"][0]["message"]
