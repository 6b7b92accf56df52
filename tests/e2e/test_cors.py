"""Issue 11, part 6: browser pages on other origins, allowed by SLIPWAY_CORS_ORIGINS only.

Over real HTTP and WebSocket: a preflight from a listed origin is answered (without a key)
with the key headers allowed, one from another origin is not; answers carry
Access-Control-Allow-Origin only for a listed origin; a WebSocket upgrade from a listed
origin (or the server's own) is accepted and any other refused with 403. With the setting
unset, only the same origin passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.types import Scope
from tests.e2e.conftest import Fakes
from tests.e2e.harness import Server, running_server
from tests.e2e.streams import Log

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
LIST = "{ applications { edges { node { id } } } }"


@pytest.fixture
def cors_server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    origins = f"{ALLOWED}, http://LOCALHOST:5173"  # normalised as browsers send Origin
    with running_server(tmp_path / "data", fakes.adapters, cors_origins=origins) as server:
        yield server


def preflight(server: Server, origin: str) -> httpx.Response:
    headers = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, x-api-key, authorization",
    }
    return httpx.options(server.url, headers=headers)


def test_a_preflight_from_a_listed_origin_is_answered_without_a_key(cors_server: Server) -> None:
    res = preflight(cors_server, ALLOWED)
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == ALLOWED
    allowed = {h.strip() for h in res.headers["access-control-allow-headers"].lower().split(",")}
    assert {"x-api-key", "authorization", "content-type"} <= allowed
    assert "POST" in res.headers["access-control-allow-methods"]
    res = preflight(cors_server, "http://localhost:5173")
    assert res.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_a_preflight_from_another_origin_gets_no_cors_headers(cors_server: Server) -> None:
    res = preflight(cors_server, OTHER)
    assert res.status_code == 400
    assert "access-control-allow-origin" not in res.headers


def test_answers_carry_the_origin_only_when_it_is_listed(cors_server: Server) -> None:
    key = cors_server.key(Scope.READ)
    for origin, expected in ((ALLOWED, ALLOWED), (OTHER, None)):
        res = httpx.post(
            cors_server.url,
            json={"query": LIST},
            headers={"origin": origin, "x-api-key": key},
        )
        assert res.status_code == 200 and res.json() == {"data": {"applications": {"edges": []}}}
        assert res.headers.get("access-control-allow-origin") == expected
    refused = httpx.post(cors_server.url, json={"query": LIST}, headers={"origin": ALLOWED})
    assert refused.status_code == 401  # CORS lets the page read the refusal, not skip the key
    assert refused.headers["access-control-allow-origin"] == ALLOWED


def test_by_default_only_the_same_origin_passes(fake_server: Server) -> None:
    res = preflight(fake_server, ALLOWED)
    assert "access-control-allow-origin" not in res.headers
    own = f"http://127.0.0.1:{fake_server.port}"
    key = fake_server.key(Scope.READ)
    ws_ack(fake_server, own, key)  # the server's own pages (GraphiQL) connect
    with pytest.raises(InvalidStatus) as refused:
        ws_ack(fake_server, ALLOWED, key)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_websocket_origin_uses_the_same_list(cors_server: Server, protocol: str) -> None:
    key = cors_server.key(Scope.READ)
    ws_ack(cors_server, ALLOWED, key, protocol)
    ws_ack(cors_server, "http://localhost:5173", key, protocol)
    ws_ack(cors_server, None, key, protocol)  # not a browser: nothing to check
    with Log() as log, pytest.raises(InvalidStatus) as refused:
        ws_ack(cors_server, OTHER, key, protocol)
    assert refused.value.response.status_code == 403
    (line,) = [r.getMessage() for r in log.records]
    assert "SLIPWAY_CORS_ORIGINS" in line and OTHER in line, line


def ws_ack(
    server: Server, origin: str | None, key: str, protocol: str = "graphql-transport-ws"
) -> None:
    with connect(
        server.ws_url,
        subprotocols=[protocol],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
        open_timeout=5,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
