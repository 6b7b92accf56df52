"""Issue 11, part 4: every operation type over both WebSocket protocols.

gql's default transport speaks the legacy graphql-ws protocol and sends queries and
mutations over it; they are answered (one ``data``, then ``complete``) with the scope checks
of HTTP, and nothing is logged as a server fault.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect

from app.types import Scope
from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP
from tests.e2e.streams import Log

LIST = "{ applications { edges { node { id name } } } }"
PROTOCOLS = {"graphql-ws": ("start", "data"), "graphql-transport-ws": ("subscribe", "next")}


def run(
    server: Server, protocol: str, key: str, query: str, **variables: Any
) -> list[dict[str, Any]]:
    """The messages answering one operation, up to its ``complete`` or ``error``."""
    start, _ = PROTOCOLS[protocol]
    with connect(server.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        ws.send(json.dumps({"type": start, "id": "op", "payload": payload}))
        messages = []
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "ka":
                continue
            messages.append(message)
            if message["type"] in ("complete", "error"):
                return messages


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_queries_and_mutations_are_answered(fake_server: Server, protocol: str) -> None:
    _, data = PROTOCOLS[protocol]
    deploy_key = fake_server.key(Scope.DEPLOY)
    with Log() as log:
        created = run(fake_server, protocol, deploy_key, CREATE_APP, input=GIT_APP())
        assert [m["type"] for m in created] == [data, "complete"], created
        app = created[0]["payload"]["data"]["createApplication"]
        listed = run(fake_server, protocol, fake_server.key(Scope.READ), LIST)
        assert [m["type"] for m in listed] == [data, "complete"], listed
        edges = listed[0]["payload"]["data"]["applications"]["edges"]
        assert edges == [{"node": {"id": app["id"], "name": "web"}}]
    assert log.records == [], log.text()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_mutation_needs_its_scope(fake_server: Server, protocol: str) -> None:
    read = fake_server.key(Scope.READ)
    answer = run(fake_server, protocol, read, CREATE_APP, input=GIT_APP())
    errors = answer[0]["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    listed = run(fake_server, protocol, read, LIST)
    assert listed[0]["payload"]["data"] == {"applications": {"edges": []}}, "nothing written"


def test_a_document_that_does_not_validate_is_an_error_message(fake_server: Server) -> None:
    with Log() as log:
        answer = run(fake_server, "graphql-ws", fake_server.key(Scope.READ), "{ nope }")
    assert answer[0]["type"] == "error"
    assert answer[0]["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
    assert log.records == [], log.text()
