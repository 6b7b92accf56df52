"""Relay conventions over real HTTP and WebSocket: paging both ways with a full pageInfo
(SQLite and PostgreSQL), node(id:) for each Node type, and status subscriptions that send
a message only when a selected field changed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server, Subscription, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.e2e.test_security_cost import Statements, add_deployments

PAGE = "edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
APPS = f"""query($first: Int, $after: String, $last: Int, $before: String) {{
  applications(first: $first, after: $after, last: $last, before: $before) {{ {PAGE} }} }}"""
DEPS = f"""query($app: ID, $first: Int, $after: String, $last: Int, $before: String) {{
  deployments(applicationId: $app, first: $first, after: $after, last: $last, before: $before)
  {{ {PAGE} }} }}"""
NESTED = f"""query($last: Int, $before: String) {{ applications(first: 200) {{ edges {{ node {{ id
  deployments(last: $last, before: $before) {{ {PAGE} }} }} }} }} }}"""


@pytest.fixture
def db_server(tmp_path: Path, fakes: Fakes, database_url: str) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters, database_url=database_url) as server:
        yield server


def _ids(conn: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in conn["edges"]]


def _walk(client: Client, query: str, root: str, *, backward: bool, **fixed: Any) -> list[Any]:
    """Every page, two at a time, from one end: [(ids, pageInfo), ...]."""
    pages: list[Any] = []
    cursor = None
    while True:
        if backward:
            conn = client(query, last=2, before=cursor, **fixed)[root]
        else:
            conn = client(query, first=2, after=cursor, **fixed)[root]
        info = conn["pageInfo"]
        pages.append((_ids(conn), info))
        assert info["startCursor"] == (conn["edges"][0]["cursor"] if conn["edges"] else None)
        assert info["endCursor"] == (conn["edges"][-1]["cursor"] if conn["edges"] else None)
        more = info["hasPreviousPage"] if backward else info["hasNextPage"]
        if not more:
            return pages
        cursor = info["startCursor"] if backward else info["endCursor"]


def _check_both_ways(client: Client, query: str, root: str, every: list[str], **fixed: Any) -> None:
    forward = _walk(client, query, root, backward=False, **fixed)
    backward = _walk(client, query, root, backward=True, **fixed)
    assert [i for ids, _ in forward for i in ids] == every  # newest first, none twice
    assert [i for ids, _ in reversed(backward) for i in ids] == every
    assert len(backward[0][0]) == 2  # last: 2 is the two oldest, not a slice of first: 20
    flags = [(p["hasPreviousPage"], p["hasNextPage"]) for _, p in forward]
    assert flags == [(False, True), *[(True, True)] * (len(flags) - 2), (True, False)]
    flags = [(p["hasPreviousPage"], p["hasNextPage"]) for _, p in backward]
    assert flags == [(True, False), *[(True, True)] * (len(flags) - 2), (False, True)]


def test_paging_forwards_and_backwards_with_a_full_page_info(db_server: Server) -> None:
    client = db_server.client(Scope.READ, Scope.DEPLOY)
    app_ids = [
        client(CREATE_APP, input=GIT_APP(name=f"page-{n}"))["createApplication"]["id"]
        for n in range(5)
    ]
    dep_ids = add_deployments(db_server, app_ids[0], 7)
    _check_both_ways(client, APPS, "applications", app_ids[::-1])
    _check_both_ways(client, DEPS, "deployments", dep_ids[::-1], app=app_ids[0])
    # the page just before a cursor, from the middle, is the neighbours of that row
    middle = client(DEPS, app=app_ids[0], first=4)["deployments"]["edges"][3]["cursor"]
    before = client(DEPS, app=app_ids[0], last=2, before=middle)["deployments"]
    assert _ids(before) == dep_ids[::-1][1:3]
    assert before["pageInfo"]["hasPreviousPage"] and before["pageInfo"]["hasNextPage"]
    window = client(
        DEPS, app=app_ids[0], first=5, after=middle, before=before["pageInfo"]["startCursor"]
    )
    assert _ids(window["deployments"]) == []  # after row 4 and before row 2: nothing between


def test_nested_backward_pages_are_the_root_pages_in_one_statement_per_shape(
    db_server: Server,
) -> None:
    client = db_server.client(Scope.READ, Scope.DEPLOY)
    made: dict[str, list[str]] = {}
    statements = Statements(db_server)
    counts = []
    try:
        for total in (2, 12):
            while len(made) < total:
                app = client(CREATE_APP, input=GIT_APP(name=f"nest-{len(made)}"))
                app_id = app["createApplication"]["id"]
                made[app_id] = add_deployments(db_server, app_id, 1 + len(made) % 4)
            counts.append(min(len(statements.during(client, NESTED, last=2)) for _ in range(3)))
    finally:
        statements.close()
    assert counts[0] == counts[1], f"statements for 2 and 12 applications: {counts}"
    for edge in client(NESTED, last=2)["applications"]["edges"]:
        app_id, nested = edge["node"]["id"], edge["node"]["deployments"]
        assert nested == client(DEPS, app=app_id, last=2)["deployments"]
        assert _ids(nested) == made[app_id][::-1][-2:]
        assert nested["pageInfo"]["hasPreviousPage"] == (len(made[app_id]) > 2)


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"first": 2, "last": 2}, "not both"),
        ({"last": 0}, "last must be between 1 and 200"),
        ({"last": 201}, "last must be between 1 and 200"),
        ({"last": 2, "before": "not a cursor!"}, "cursor"),
    ],
)
def test_bad_paging_arguments_are_bad_user_input(
    fake_server: Server, variables: dict[str, Any], says: str
) -> None:
    client = fake_server.client(Scope.READ)
    with pytest.raises(GraphQLError) as caught:
        client(APPS, **variables)
    assert caught.value.codes == ["BAD_USER_INPUT"]
    assert says in caught.value.errors[0]["message"]


NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Application { name }
  ... on Deployment { status logPath application { id } }
  ... on Server { name maxConcurrentBuilds } } }"""


def test_node_finds_each_type_and_nothing_else(fake_server: Server, fakes: Fakes) -> None:
    admin = fake_server.client(Scope.ADMIN)
    app_id = admin(CREATE_APP, input=GIT_APP(name="node-app"))["createApplication"]["id"]
    dep_id = admin(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_finished(admin, dep_id)
    server_id = admin('mutation { createServer(name: "node-srv") { id } }')["createServer"]["id"]
    key_id = admin("{ apiKeys { id } }")["apiKeys"][0]["id"]
    reader = fake_server.client(Scope.READ)

    app = reader(NODE, id=app_id)["node"]
    assert app == {"__typename": "Application", "id": app_id, "name": "node-app"}
    dep = reader(NODE, id=dep_id)["node"]
    assert dep["__typename"] == "Deployment" and dep["status"] == "DONE"
    assert dep["application"] == {"id": app_id}
    assert dep["logPath"] is None  # READ keys never see server paths, through node() neither
    assert admin(NODE, id=dep_id)["node"]["logPath"]  # ...which DEPLOY and ADMIN keys do
    srv = reader(NODE, id=server_id)["node"]
    assert srv == {
        "__typename": "Server",
        "id": server_id,
        "name": "node-srv",
        "maxConcurrentBuilds": 1,
    }
    for nobody in ("0" * 24, "not-an-id", "'; DROP TABLE applications; --", "x" * 5000, key_id):
        assert reader(NODE, id=nobody)["node"] is None, nobody  # API keys are not Nodes
    # the same node through the Node interface's id, as a Relay client refetches
    assert reader("query($id: ID!) { node(id: $id) { id } }", id=app_id)["node"]["id"] == app_id


def test_node_needs_a_key(fake_server: Server) -> None:
    res = httpx.post(fake_server.url, json={"query": '{ node(id: "x") { id } }'})
    assert res.status_code == 401


ONLY_STATUS = "subscription($id: ID!) { deploymentStatus(deploymentId: $id) { status } }"
WIDER = """subscription($id: ID!) { deploymentStatus(deploymentId: $id) {
  status commitSha imageRef steps { step outcome } } }"""


def _all(sub: Subscription) -> list[dict[str, Any]]:
    try:
        return [data["deploymentStatus"] for data in sub.messages(timeout=60)]
    finally:
        sub.close()


def test_a_status_only_subscription_hears_nothing_of_other_changes(
    fake_server: Server, fakes: Fakes
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP(name="quiet"))["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 20, 0.05  # a 1 s build
    fakes.runtime.hang = True  # then VERIFY_HEALTH waits: RUNNING until cancelled
    dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    assert fakes.builder.started.wait(30)
    narrow = fake_server.subscribe(ONLY_STATUS, id=dep_id)  # both while RUNNING
    wide = fake_server.subscribe(WIDER, id=dep_id)
    _wait_step(client, dep_id, "VERIFY_HEALTH")  # BUILD_IMAGE and RELEASE ended meanwhile
    client("mutation($id: ID!) { cancelDeployment(applicationId: $id) { id } }", id=app_id)
    narrow_seen, wide_seen = _all(narrow), _all(wide)
    running = [m for m in wide_seen if m["status"] == "RUNNING"]
    assert len(running) >= 2, wide_seen  # the image and steps changed while RUNNING: sent
    assert len({json.dumps(m, sort_keys=True) for m in running}) == len(running)
    assert narrow_seen == [{"status": "RUNNING"}, {"status": "CANCELLED"}], narrow_seen


def _wait_step(client: Client, dep_id: str, step: str) -> None:
    deadline = time.monotonic() + 30
    query = "query($id: ID!) { deployment(id: $id) { steps { step } } }"
    while step not in {s["step"] for s in client(query, id=dep_id)["deployment"]["steps"]}:
        assert time.monotonic() < deadline, f"{step} did not start"
        time.sleep(0.05)


def test_application_status_sends_only_status_changes(fake_server: Server, fakes: Fakes) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP(name="quiet-app"))["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = 10, 0.05
    sub = fake_server.subscribe(
        "subscription($id: ID!) { applicationStatus(applicationId: $id) { status } }", id=app_id
    )
    seen: list[str] = []
    try:
        messages = sub.messages(timeout=30)
        seen.append(next(messages)["applicationStatus"]["status"])
        dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
        for data in messages:  # four steps end in between, each announced
            seen.append(data["applicationStatus"]["status"])
            if seen[-1] == "DONE":
                break
    finally:
        sub.close()
    assert wait_finished(client, dep_id)["status"] == "DONE"
    assert seen == ["IDLE", "RUNNING", "DONE"], seen
