"""Issue 11, Proof: the clients users bring, against a real server over real HTTP/WebSocket.

- the npm ``graphql-ws`` client (graphql-transport-ws) and ``graphql-sse`` client
  (distinct connections mode), run by Node from tests/e2e/js (pinned in its
  package-lock.json; scripts/test installs them with ``npm ci``);
- Python ``gql`` over its websockets transport, in its default negotiation (the legacy
  graphql-ws protocol, which also carries its queries and mutations) and over
  graphql-transport-ws.

Each follows a deployment's log and gets every line once; queries, mutations and refused
keys answer as over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.websockets import WebsocketsTransport

from app.logs.files import last_seq
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY, LOGS_SUB
from tests.e2e.streams import CuttingProxy, Log
from tests.services import missing

JS = Path(__file__).resolve().parent / "js"
LIST = "{ applications { edges { node { id name } } } }"
LOGS_SEQ = "subscription($id: ID!) { deploymentLogs(deploymentId: $id) { seq message } }"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        missing("Node.js (scripts/services up node)")
    if not (JS / "node_modules" / "graphql-sse").is_dir():
        missing("the npm clients in tests/e2e/js (scripts/test runs npm ci there)")
    return str(path)


def js_client(node: str, transport: str, url: str, key: str, query: str, **kw: Any) -> list[Any]:
    args = [node, str(JS / "client.mjs"), transport, url, key, query, json.dumps(kw.get("v", {}))]
    if kw.get("resume"):
        args.append("--resume")
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=JS)
    assert done.stderr == "", done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def deploy(server: Server, fakes: Fakes, lines: int, delay: float = 0.0) -> dict[str, Any]:
    client = server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = lines, delay
    dep: dict[str, Any] = client(DEPLOY, id=app_id)["deployApplication"]
    return dep


def seqs(results: list[dict[str, Any]]) -> list[int]:
    return [line["seq"] for r in results for line in r["data"]["deploymentLogs"]]


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_npm_clients_follow_a_deployment_log(
    node: str, fake_server: Server, fakes: Fakes, transport: str
) -> None:
    dep = deploy(fake_server, fakes, lines=1500, delay=0.001)
    url = fake_server.ws_url if transport == "ws" else fake_server.url
    with Log() as log:
        out = js_client(
            node, transport, url, fake_server.key(Scope.READ), LOGS_SUB, v={"id": dep["id"]}
        )
    results = [o["next"] for o in out if "next" in o]
    assert {"complete": True} in out, out[-3:]
    assert seqs(results) == list(range(1, last_seq(Path(dep["logPath"])) + 1))
    assert len(results) > 2, "followed live"
    assert log.records == [], log.text()


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_npm_clients_run_queries_and_mutations_with_the_keys_scope(
    node: str, fake_server: Server, transport: str
) -> None:
    url = fake_server.ws_url if transport == "ws" else fake_server.url
    create = CREATE_APP
    out = js_client(
        node, transport, url, fake_server.key(Scope.DEPLOY), create, v={"input": GIT_APP()}
    )
    app_id = out[0]["next"]["data"]["createApplication"]["id"]
    read = fake_server.key(Scope.READ)
    out = js_client(node, transport, url, read, LIST)
    assert out[0]["next"]["data"] == {
        "applications": {"edges": [{"node": {"id": app_id, "name": "web"}}]}
    }
    out = js_client(node, transport, url, read, create, v={"input": GIT_APP(name="other")})
    assert out[0]["next"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_npm_graphql_ws_with_a_bad_key_is_refused_4401(node: str, fake_server: Server) -> None:
    out = js_client(node, "ws", fake_server.ws_url, "slw_not-a-key", LIST)
    assert out[-1]["error"]["code"] == 4401, out


def test_npm_graphql_sse_without_a_valid_key_is_refused(node: str, fake_server: Server) -> None:
    out = js_client(node, "sse", fake_server.url, "slw_not-a-key", LIST)
    assert "error" in out[-2] and out[-1] == {"connects": 1}, out


def test_npm_graphql_sse_resumes_after_cuts_with_last_event_id(
    node: str, fake_server: Server, fakes: Fakes
) -> None:
    """graphql-sse retries a broken connection with the same request; its headers function
    adds Last-Event-ID (the last seq it got), so the retry resumes: no line lost or repeated."""
    dep = deploy(fake_server, fakes, lines=1500, delay=0.003)  # ~5 s of ~90-byte events
    # A retry replays what came after its Last-Event-ID in one batch: the cuts leave room
    # for that (the first one comes ~0.5 s in, as Node starts) and still break ~5 times.
    proxy = CuttingProxy(fake_server.port, cut_after=lambda n: 20_000 + 5_000 * n)
    try:
        with Log() as log:
            out = js_client(
                node, "sse", proxy.url(), fake_server.key(Scope.READ), LOGS_SEQ,
                v={"id": dep["id"]}, resume=True,
            )  # fmt: skip
    finally:
        proxy.close()
    assert {"complete": True} in out, out[-3:]
    assert seqs([o["next"] for o in out if "next" in o]) == list(
        range(1, last_seq(Path(dep["logPath"])) + 1)
    )
    connects = out[-1]["connects"]
    assert connects >= 4 and proxy.cuts >= 3, (connects, proxy.cuts)
    assert log.records == [], log.text()


async def gql_session_run(
    server: Server, key: str, subprotocols: list[str] | None, dep_id: str
) -> Any:
    transport = WebsocketsTransport(
        url=server.ws_url, init_payload={"apiKey": key}, subprotocols=subprotocols
    )
    async with Client(transport=transport) as session:
        listed = await session.execute(gql(LIST))
        lines: list[int] = []
        follow = GraphQLRequest(LOGS_SUB, variable_values={"id": dep_id, "after": 0})
        async for result in session.subscribe(follow):
            lines.extend(line["seq"] for line in result["deploymentLogs"])
        refused = None
        create = GraphQLRequest(CREATE_APP, variable_values={"input": GIT_APP(name="x")})
        try:
            await session.execute(create)
        except TransportQueryError as exc:
            refused = exc.errors
        return transport.subprotocol, listed, lines, refused


@pytest.mark.parametrize(
    ("subprotocols", "expected"),
    [(None, "graphql-ws"), ([WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL], "graphql-transport-ws")],
    ids=["default-legacy", "graphql-transport-ws"],
)
def test_gql_queries_subscribes_and_is_refused_by_scope(
    fake_server: Server, fakes: Fakes, subprotocols: list[str] | None, expected: str
) -> None:
    dep = deploy(fake_server, fakes, lines=800, delay=0.001)
    with Log() as log:
        protocol, listed, lines, refused = asyncio.run(
            gql_session_run(fake_server, fake_server.key(Scope.READ), subprotocols, dep["id"])
        )
    assert protocol == expected
    assert listed["applications"]["edges"][0]["node"]["name"] == "web"
    assert lines == list(range(1, last_seq(Path(dep["logPath"])) + 1))
    assert refused is not None and refused[0]["extensions"]["code"] == "FORBIDDEN"
    wait_finished(fake_server.client(Scope.READ), dep["id"])
    assert log.records == [], log.text()


def test_gql_with_a_bad_key_is_refused(fake_server: Server) -> None:
    async def attempt() -> None:
        transport = WebsocketsTransport(url=fake_server.ws_url, init_payload={"apiKey": "slw_no"})
        async with Client(transport=transport) as session:
            await session.execute(gql(LIST))

    with pytest.raises((TransportServerError, Exception)) as refused:
        asyncio.run(attempt())
    assert "Unauthorized" in str(refused.value) or "4401" in str(refused.value), refused.value
