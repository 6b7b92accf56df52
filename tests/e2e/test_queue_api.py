"""The queue through the API, with fake adapters over real HTTP: dedup, deploymentQueue,
scheduling, cancel, kill, clearDeployments, servers, and who may do what."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server
from tests.e2e.polling import CANCEL, messages, poll, state, timed_cancel, wait_status, wait_step
from tests.e2e.queries import CREATE_APP, DEPLOY, DEPLOYMENTS, REDEPLOY

WHO = "API key 'test'"  # the harness names every key "test"
HEARTBEAT_S = 2.0  # the default: how soon a worker notices a cancel or a kill
SLACK_S = 1.5

DEPLOY_AT = """
mutation($id: ID!, $at: DateTime) {
  deployApplication(applicationId: $id, scheduledAt: $at) { id status trigger scheduledAt } }"""
QUEUE = """
query($server: ID) { deploymentQueue(serverId: $server) { state position
  deployment { id status queuePosition } } }"""
KILL = """
mutation($id: ID!) { killDeploymentProcess(deploymentId: $id) {
  id status errorMessage pid finishedAt } }"""
CLEAR = "mutation($id: ID!) { clearDeployments(applicationId: $id) }"
CREATE_SERVER = """
mutation($name: String!, $max: Int!) { createServer(name: $name, maxConcurrentBuilds: $max) {
  id name maxConcurrentBuilds } }"""
APP_SERVER = "query($id: ID!) { application(id: $id) { id status buildServerId } }"
UPDATE = """
mutation($id: ID!, $input: UpdateApplicationInput!) { updateApplication(id: $id, input: $input) {
  id buildServerId } }"""


def new_app(client: Client, name: str = "web", **extra: Any) -> str:
    app_id: str = client(CREATE_APP, input=GIT_APP(name=name, **extra))["createApplication"]["id"]
    return app_id


def app_status(client: Client, app_id: str) -> str:
    status: str = client(APP_SERVER, id=app_id)["application"]["status"]
    return status


def queue(client: Client, server: str | None = None) -> list[tuple[str, str, int | None]]:
    jobs = client(QUEUE, server=server)["deploymentQueue"]
    return [(j["deployment"]["id"], j["state"], j["position"]) for j in jobs]


def codes(err: pytest.ExceptionInfo[GraphQLError]) -> list[str | None]:
    return err.value.codes


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- dedup ---------------------------------------------------------------------------------


def test_a_request_equal_to_a_queued_one_returns_that_one(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    fakes.builder.block = True
    running = client(DEPLOY, id=app_id)["deployApplication"]
    wait_status(client, running["id"], "RUNNING", timeout=10)

    queued = client(DEPLOY, id=app_id)["deployApplication"]
    assert queued["id"] != running["id"], "a running deployment is not a duplicate"
    assert queued["status"] == "QUEUED"
    again = client(DEPLOY, id=app_id)["deployApplication"]
    assert again == queued, "the same trigger while QUEUED returns the queued one"
    rebuild = client(REDEPLOY, id=app_id)["redeployApplication"]
    assert rebuild["id"] not in (running["id"], queued["id"]), "another trigger is not equal"
    assert client(REDEPLOY, id=app_id)["redeployApplication"]["id"] == rebuild["id"]
    edges = client(DEPLOYMENTS, app=app_id)["deployments"]["edges"]
    assert [e["node"]["id"] for e in edges] == [rebuild["id"], queued["id"], running["id"]]

    client(CANCEL, id=app_id)
    fakes.builder.block = False
    wait_status(client, running["id"], "CANCELLED", timeout=HEARTBEAT_S + SLACK_S)
    fresh = client(DEPLOY, id=app_id)["deployApplication"]
    assert fresh["id"] not in (running["id"], queued["id"], rebuild["id"])
    assert wait_finished(client, fresh["id"])["status"] == "DONE"


# -- the queue view and scheduling ---------------------------------------------------------


def test_queue_shows_every_state_and_a_scheduled_deployment_runs_at_its_time(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    a, b, c = (new_app(client, name) for name in ("a", "b", "c"))
    fakes.builder.block = True
    a1 = client(DEPLOY, id=a)["deployApplication"]["id"]
    wait_status(client, a1, "RUNNING", timeout=10)
    a2 = client(DEPLOY, id=a)["deployApplication"]["id"]  # behind a1, same application
    b1 = client(DEPLOY, id=b)["deployApplication"]["id"]  # behind a1: one build at a time
    at = datetime.now(UTC) + timedelta(seconds=3)
    scheduled = client(DEPLOY_AT, id=c, at=at.isoformat())["deployApplication"]
    c1 = scheduled["id"]
    assert scheduled["status"] == "SCHEDULED"
    assert parse(scheduled["scheduledAt"]) == at

    assert queue(client) == [
        (a1, "ACTIVE", None),
        (a2, "WAITING", 1),
        (b1, "WAITING", 2),
        (c1, "DELAYED", None),
    ]
    jobs = client(QUEUE)["deploymentQueue"]
    assert [j["deployment"]["queuePosition"] for j in jobs] == [None, 1, 2, None]
    assert [j["deployment"]["status"] for j in jobs] == ["RUNNING", "QUEUED", "QUEUED", "SCHEDULED"]

    fakes.builder.block = False
    killed = client(KILL, id=a1)["killDeploymentProcess"]
    assert killed["status"] == "ERROR"
    assert wait_finished(client, a2)["status"] == "DONE"
    assert wait_finished(client, b1)["status"] == "DONE"
    assert state(client, c1)["status"] == "SCHEDULED", "not before its time"

    done = wait_finished(client, c1, timeout=30)
    assert done["status"] == "DONE", done["errorMessage"]
    lateness = parse(done["startedAt"]) - at
    assert timedelta(0) <= lateness < timedelta(seconds=2.5), f"started {lateness} after its time"

    after = queue(client)
    assert {dep_id: (st, pos) for dep_id, st, pos in after} == {
        a1: ("FAILED", None),
        a2: ("COMPLETED", None),
        b1: ("COMPLETED", None),
        c1: ("COMPLETED", None),
    }
    assert after[0][0] == c1 and after[-1][0] == a1, "newest finished first"


def test_a_scheduled_time_already_past_queues_at_once(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    past = datetime.now(UTC) - timedelta(minutes=5)
    dep = client(DEPLOY_AT, id=app_id, at=past.isoformat())["deployApplication"]
    assert dep["status"] in {"QUEUED", "RUNNING"} and dep["scheduledAt"] is None
    assert wait_finished(client, dep["id"])["status"] == "DONE"


# -- cancel --------------------------------------------------------------------------------


def test_cancel_ends_the_queued_at_once_and_the_running_one_with_its_release_undone(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    first = wait_finished(client, client(DEPLOY, id=app_id)["deployApplication"]["id"])
    assert first["status"] == "DONE" and app_status(client, app_id) == "DONE"
    name = first["application"]["appName"]

    fakes.runtime.hang = True  # the next release never becomes healthy
    running = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_step(client, running, "VERIFY_HEALTH", timeout=10)
    assert fakes.runtime.services[name].image != first["imageRef"]
    queued = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = client(DEPLOY_AT, id=app_id, at=later.isoformat())["deployApplication"]["id"]
    assert app_status(client, app_id) == "RUNNING"

    elapsed, ended, returned = timed_cancel(client, app_id, running)
    assert returned == {"id": running, "status": "RUNNING"}, "the running one, now stopping"
    assert ended["status"] == "CANCELLED"
    assert elapsed < HEARTBEAT_S + SLACK_S, f"cancel took {elapsed:.2f}s"
    assert ended["errorMessage"] == f"cancelled by {WHO}"
    assert ended["steps"][-1] == {"step": "VERIFY_HEALTH", "outcome": "CANCELLED"}
    assert ended["application"]["status"] == "DONE", "what it was before"
    assert fakes.runtime.undone == [name]
    assert fakes.runtime.services[name].image == first["imageRef"], "previous spec restored"

    for dep_id in (queued, scheduled):
        dep = state(client, dep_id)
        assert dep["status"] == "CANCELLED" and dep["startedAt"] is None, dep
        assert dep["errorMessage"] == f"cancelled by {WHO}"
    for dep_id in (running, queued, scheduled):
        assert any(f"cancelled by {WHO}" in m for m in messages(client, dep_id)), dep_id
    time.sleep(0.5)
    assert state(client, queued)["startedAt"] is None, "a cancelled deployment never starts"
    assert client(CANCEL, id=app_id) == {"cancelDeployment": None}, "nothing left to cancel"


def test_cancel_of_a_first_release_removes_its_service_and_leaves_the_app_idle(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    fakes.runtime.hang = True
    dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_step(client, dep_id, "VERIFY_HEALTH", timeout=10)
    assert len(fakes.runtime.services) == 1
    elapsed, ended, _ = timed_cancel(client, app_id, dep_id)
    assert ended["status"] == "CANCELLED" and elapsed < HEARTBEAT_S + SLACK_S
    assert ended["application"]["status"] == "IDLE"
    assert fakes.runtime.services == {}, "the service it created is removed"
    assert len(fakes.runtime.removed) == 1


def test_cancel_returns_a_cancelled_queued_deployment_as_cancelled(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    busy, other = new_app(client, "busy"), new_app(client, "other")
    fakes.builder.block = True
    running = client(DEPLOY, id=busy)["deployApplication"]["id"]
    wait_status(client, running, "RUNNING", timeout=10)
    queued = client(DEPLOY, id=other)["deployApplication"]["id"]
    try:
        returned = client(CANCEL, id=other)["cancelDeployment"]
        assert returned["id"] == queued
        assert state(client, queued)["status"] == "CANCELLED"
        assert returned["status"] == "CANCELLED", "the mutation returns the row as it now is"
    finally:
        client(CANCEL, id=busy)
        wait_status(client, running, "CANCELLED", timeout=HEARTBEAT_S + SLACK_S)


def test_cancel_of_an_unknown_application_is_not_found(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    with pytest.raises(GraphQLError) as err:
        client(CANCEL, id="nope")
    assert codes(err) == ["NOT_FOUND"]


# -- kill ----------------------------------------------------------------------------------


def test_kill_ends_a_running_deployment_in_error_and_nothing_else(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    fakes.builder.block = True
    running = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_step(client, running, "BUILD_IMAGE", timeout=10)
    queued = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    with pytest.raises(GraphQLError) as err:
        client(KILL, id=queued)
    assert codes(err) == ["CONFLICT"] and "cancelDeployment" in err.value.errors[0]["message"]
    fakes.builder.block = False

    started = time.monotonic()
    killed = client(KILL, id=running)["killDeploymentProcess"]
    elapsed = time.monotonic() - started
    assert elapsed < HEARTBEAT_S + SLACK_S, f"kill took {elapsed:.2f}s"
    assert killed["id"] == running and killed["status"] == "ERROR"
    assert killed["errorMessage"] == f"killed by {WHO}"
    assert killed["pid"] is None and killed["finishedAt"] is not None
    dep = state(client, running)
    assert dep["steps"][-1] == {"step": "BUILD_IMAGE", "outcome": "CANCELLED"}
    assert any(f"killed by {WHO}" in m for m in messages(client, running))

    nxt = wait_finished(client, queued)
    assert nxt["status"] == "DONE", "the next one in line runs after the kill"
    for finished in (running, queued):
        with pytest.raises(GraphQLError) as err:
            client(KILL, id=finished)
        assert codes(err) == ["CONFLICT"]
        assert "not RUNNING" in err.value.errors[0]["message"]
    with pytest.raises(GraphQLError) as err:
        client(KILL, id="does-not-exist")
    assert codes(err) == ["NOT_FOUND"]


def test_killed_deployment_leaves_the_application_in_error(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = new_app(client)
    fakes.runtime.hang = True
    dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_step(client, dep_id, "VERIFY_HEALTH", timeout=10)
    assert client(KILL, id=dep_id)["killDeploymentProcess"]["status"] == "ERROR"
    assert app_status(client, app_id) == "ERROR"
    assert fakes.runtime.services == {}, "a killed release is undone too"


# -- clearDeployments ----------------------------------------------------------------------


def test_clear_deletes_finished_rows_and_their_logs_only(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id, other_id = new_app(client, "mine"), new_app(client, "other")
    finished = []
    for fail in (None, "docker build failed: exit code 3", None):
        fakes.builder.fail = fail
        finished.append(wait_finished(client, client(DEPLOY, id=app_id)["deployApplication"]["id"]))
    fakes.builder.fail = None
    assert [d["status"] for d in finished] == ["DONE", "ERROR", "DONE"]
    kept = wait_finished(client, client(DEPLOY, id=other_id)["deployApplication"]["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = client(DEPLOY_AT, id=app_id, at=later.isoformat())["deployApplication"]["id"]
    logs = [Path(d["logPath"]) for d in finished]
    assert all(p.is_file() for p in logs)

    assert client(CLEAR, id=app_id) == {"clearDeployments": 3}
    for dep in finished:
        assert client("query($id: ID!) { deployment(id: $id) { id } }", id=dep["id"]) == {
            "deployment": None
        }
    assert not any(p.exists() for p in logs), "their log files are deleted"
    edges = client(DEPLOYMENTS, app=app_id)["deployments"]["edges"]
    assert [e["node"] for e in edges] == [{"id": scheduled, "status": "SCHEDULED"}]
    assert state(client, kept["id"])["status"] == "DONE", "another application's stay"
    assert Path(kept["logPath"]).is_file()
    assert client(CLEAR, id=app_id) == {"clearDeployments": 0}

    client(CANCEL, id=app_id)
    assert client(CLEAR, id=app_id) == {"clearDeployments": 1}, "now finished: cancelled"
    assert client(DEPLOYMENTS, app=app_id)["deployments"]["edges"] == []
    with pytest.raises(GraphQLError) as err:
        client(CLEAR, id="nope")
    assert codes(err) == ["NOT_FOUND"]


# -- scopes and servers --------------------------------------------------------------------


def test_read_keys_can_look_but_not_cancel_kill_or_clear(fake_server: Server, fakes: Fakes) -> None:
    deployer = fake_server.client(Scope.DEPLOY)
    reader = fake_server.client(Scope.READ)
    app_id = new_app(deployer)
    fakes.builder.block = True
    dep_id = deployer(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_status(deployer, dep_id, "RUNNING", timeout=10)
    try:
        for doc, var in ((CANCEL, app_id), (KILL, dep_id), (CLEAR, app_id)):
            with pytest.raises(GraphQLError) as err:
                reader(doc, id=var)
            assert codes(err) == ["FORBIDDEN"], doc
        anonymous = Client(fake_server.url, None)
        with pytest.raises(GraphQLError) as err:
            anonymous(CANCEL, id=app_id)
        assert codes(err) == ["UNAUTHENTICATED"]
        assert queue(reader) == [(dep_id, "ACTIVE", None)], "READ sees the queue"
        dep = state(reader, dep_id)
        assert dep["status"] == "RUNNING" and not dep["cancelRequested"]
    finally:
        deployer(CANCEL, id=app_id)
        wait_status(deployer, dep_id, "CANCELLED", timeout=HEARTBEAT_S + SLACK_S)


def test_servers_need_admin_and_applications_need_a_known_build_server(
    fake_server: Server, fakes: Fakes
) -> None:
    admin = fake_server.client(Scope.ADMIN)
    deployer = fake_server.client(Scope.DEPLOY)
    for who in (deployer, fake_server.client(Scope.READ)):
        with pytest.raises(GraphQLError) as err:
            who(CREATE_SERVER, name="builder", max=2)
        assert codes(err) == ["FORBIDDEN"]
    with pytest.raises(GraphQLError) as err:
        admin(CREATE_SERVER, name="builder", max=0)
    assert codes(err) == ["BAD_USER_INPUT"]
    server = admin(CREATE_SERVER, name="builder", max=2)["createServer"]
    assert server["name"] == "builder" and server["maxConcurrentBuilds"] == 2

    with pytest.raises(GraphQLError) as err:
        deployer(CREATE_APP, input=GIT_APP(buildServerId="no-such-server"))
    assert codes(err) == ["BAD_USER_INPUT"]
    assert "buildServerId" in err.value.errors[0]["message"]
    assert deployer("{ applications { edges { node { id } } } }")["applications"]["edges"] == []

    local = new_app(deployer, "local")
    with pytest.raises(GraphQLError) as err:
        deployer(UPDATE, id=local, input={"buildServerId": "no-such-server"})
    assert codes(err) == ["BAD_USER_INPUT"]
    assert deployer(APP_SERVER, id=local)["application"]["buildServerId"] is None

    # Two applications on a server allowing 2 builds run at once; a third waits.
    apps = [new_app(deployer, f"on-server-{n}", buildServerId=server["id"]) for n in range(3)]
    assert deployer(APP_SERVER, id=apps[0])["application"]["buildServerId"] == server["id"]
    fakes.builder.block = True
    deps = [deployer(DEPLOY, id=a)["deployApplication"]["id"] for a in apps]
    try:
        poll(
            lambda: True if [s for _, s, _ in queue(deployer)].count("ACTIVE") == 2 else None,
            timeout=10,
            what="two deployments running on the server",
        )
        assert queue(deployer, server["id"]) == [
            (deps[0], "ACTIVE", None),
            (deps[1], "ACTIVE", None),
            (deps[2], "WAITING", 1),
        ]
        assert queue(deployer, "another-server") == []
    finally:
        for app in apps:
            deployer(CANCEL, id=app)
        for dep_id in deps:
            wait_status(deployer, dep_id, "CANCELLED", timeout=HEARTBEAT_S + SLACK_S)
