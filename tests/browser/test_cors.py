"""A page on another origin calls the API from real Chromium (issue 11, part 6).

The page is served from another port of 127.0.0.1 (another origin). Listed in
SLIPWAY_CORS_ORIGINS, its fetch with the key header (a preflighted request), its SSE stream
with Last-Event-ID and its WebSocket all work; from an origin not listed, the browser
refuses the fetch and the server refuses the WebSocket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.browser.conftest import Scripted
from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import CREATE_APP

FETCH = """async ([url, key]) => {
  try {
    const res = await fetch(url, {method: "POST",
      headers: {"content-type": "application/json", "x-api-key": key},
      body: JSON.stringify({query: "{ applications { edges { node { name } } } }"})});
    return {status: res.status, body: await res.json()};
  } catch (err) { return {error: String(err)}; }
}"""
SSE = """async ([url, key, appId]) => {
  const QUERY = "subscription($id: ID!) { applicationStatus(applicationId: $id) { status } }";
  try {
    const res = await fetch(url, {method: "POST",
      headers: {"content-type": "application/json", "accept": "text/event-stream",
                "x-api-key": key, "last-event-id": "0"},
      body: JSON.stringify({query: QUERY, variables: {id: appId}})});
    const reader = res.body.getReader();
    const {value} = await reader.read();
    await reader.cancel();
    return {status: res.status, first: new TextDecoder().decode(value)};
  } catch (err) { return {error: String(err)}; }
}"""
WS = """([url, key]) => new Promise((resolve) => {
  const ws = new WebSocket(url, "graphql-transport-ws");
  ws.onopen = () => ws.send(JSON.stringify({type: "connection_init", payload: {apiKey: key}}));
  ws.onmessage = (event) => { ws.close(); resolve(JSON.parse(event.data).type); };
  ws.onclose = (event) => resolve("closed " + event.code);
})"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<!doctype html><title>elsewhere</title><p>another origin</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def origins() -> Iterator[tuple[str, str]]:
    """Two pages' origins: the first is listed, the second not."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Page) for _ in range(2)]
    for httpd in servers:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    finally:
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture
def cors_server(tmp_path: Path, scripted: Scripted, origins: tuple[str, str]) -> Iterator[Server]:
    with running_server(tmp_path / "data", scripted.adapters, cors_origins=origins[0]) as srv:
        yield srv


def test_a_listed_origin_calls_the_api_and_another_is_refused(
    page: Any, cors_server: Server, origins: tuple[str, str]
) -> None:
    allowed, other = origins
    app_id = cors_server.client(Scope.ADMIN)(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    key = cors_server.key(Scope.READ)

    page.goto(allowed + "/")
    res = page.evaluate(FETCH, [cors_server.url, key])
    assert res == {
        "status": 200,
        "body": {"data": {"applications": {"edges": [{"node": {"name": "web"}}]}}},
    }
    sse = page.evaluate(SSE, [cors_server.url, key, app_id])
    assert sse["status"] == 200 and '"status":"IDLE"' in sse["first"], sse
    assert page.evaluate(WS, [cors_server.ws_url, key]) == "connection_ack"

    page.goto(other + "/")
    res = page.evaluate(FETCH, [cors_server.url, key])
    assert "error" in res and "Failed to fetch" in res["error"], res
    assert page.evaluate(WS, [cors_server.ws_url, key]) == "closed 1006"  # the 403 upgrade
