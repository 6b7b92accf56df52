"""No operation without a valid key, on HTTP and WebSocket; scopes are enforced."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.types import Scope
from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Client, GraphQLError, Server
from tests.e2e.queries import CREATE_APP, DEPLOY, STATUS_SUB

LIST = "{ applications { edges { node { id } } } }"


def test_http_without_key_is_unauthenticated(fake_server: Server) -> None:
    body = Client(fake_server.url, None).raw(LIST)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] is None


def test_http_with_unknown_key_is_unauthenticated(fake_server: Server) -> None:
    body = Client(fake_server.url, "slw_not-a-real-key").raw(LIST)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_bearer_header_works(fake_server: Server) -> None:
    key = fake_server.key(Scope.READ)
    res = Client(fake_server.url, None).http.post(
        fake_server.url, json={"query": LIST}, headers={"Authorization": f"Bearer {key}"}
    )
    assert res.json() == {"data": {"applications": {"edges": []}}}


def test_read_key_cannot_deploy_or_create(fake_server: Server) -> None:
    admin = fake_server.client(Scope.ADMIN)
    app_id = admin(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    reader = fake_server.client(Scope.READ)
    for query, variables in ((DEPLOY, {"id": app_id}), (CREATE_APP, {"input": GIT_APP()})):
        with pytest.raises(GraphQLError) as err:
            reader(query, **variables)
        assert err.value.codes == ["FORBIDDEN"]
    history = admin("{ deployments { edges { node { id } } } }")["deployments"]["edges"]
    assert history == [], "a refused deploy must not queue anything"


def test_deploy_key_cannot_create_keys(fake_server: Server) -> None:
    deployer = fake_server.client(Scope.DEPLOY)
    with pytest.raises(GraphQLError) as err:
        deployer('mutation { createApiKey(name: "x", scopes: [ADMIN]) { key } }')
    assert err.value.codes == ["FORBIDDEN"]


def test_created_key_is_shown_once_and_works(fake_server: Server) -> None:
    admin = fake_server.client(Scope.ADMIN)
    made = admin('mutation { createApiKey(name: "ci", scopes: [READ]) { key scopes } }')
    key = made["createApiKey"]["key"]
    assert made["createApiKey"]["scopes"] == ["READ"]
    assert Client(fake_server.url, key)(LIST) == {"applications": {"edges": []}}
    with fake_server.db.session() as session:
        from app.db.models import ApiKey

        stored = [row.key_hash for row in session.query(ApiKey).all()]
    assert key not in stored and all(len(h) == 64 for h in stored)


def test_not_found_and_bad_cursor_have_codes(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    with pytest.raises(GraphQLError) as err:
        client(DEPLOY, id="nope")
    assert err.value.codes == ["NOT_FOUND"]
    with pytest.raises(GraphQLError) as err:
        client('{ deployments(after: "%%%") { edges { cursor } } }')
    assert err.value.codes == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_websocket_without_key_is_closed_4401(fake_server: Server, protocol: str) -> None:
    with connect(fake_server.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_websocket_key_in_upgrade_headers(fake_server: Server) -> None:
    key = fake_server.key(Scope.READ)
    with connect(
        fake_server.ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"x-api-key": key},
    ) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"


def test_legacy_graphql_ws_subscription_streams(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep_id = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    key = fake_server.key(Scope.READ)
    with connect(fake_server.ws_url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {"query": STATUS_SUB, "variables": {"id": dep_id}},
                }
            )
        )
        statuses = []
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg["type"] == "ka":
                continue
            if msg["type"] == "complete":
                break
            assert msg["type"] == "data", msg
            statuses.append(msg["payload"]["data"]["deploymentStatus"]["status"])
    assert statuses[-1] == "DONE"
