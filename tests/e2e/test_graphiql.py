"""Issue 11, part 3: GraphiQL offline, over real HTTP.

The page names no other host; every script and stylesheet it loads is served by Slipway
with its content type, the versioned ones cached for a year; SLIPWAY_GRAPHIQL=false turns
the page and its assets off.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from app.graphql.graphiql import ASSETS
from tests.e2e.conftest import Fakes
from tests.e2e.harness import Server, running_server

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain", ".md": "text/markdown"}


def page(server: Server) -> httpx.Response:
    return httpx.get(server.url, headers=HTML)


def referenced(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_page_names_no_other_host(fake_server: Server) -> None:
    res = page(fake_server)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", res.text) == []
    csp = res.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self';" in csp
    refs = referenced(res.text)
    assert len(refs) >= 5
    for ref in refs:
        assert ref == "data:," or (ref.startswith("/graphiql/") and not urlsplit(ref).netloc)


def test_every_asset_of_the_page_is_served_with_its_type(fake_server: Server) -> None:
    base = f"http://127.0.0.1:{fake_server.port}"
    refs = [r for r in referenced(page(fake_server).text) if r.startswith("/")]
    names = {r.removeprefix("/graphiql/") for r in refs}
    assert {"graphiql-3.8.3.min.js", "react-18.2.0.production.min.js"} <= names
    for ref in refs:
        res = httpx.get(base + ref)
        assert res.status_code == 200, ref
        suffix = ref[ref.rindex(".") :]
        assert res.headers["content-type"].startswith(TYPES[suffix]), ref
        assert res.headers["x-content-type-options"] == "nosniff"
        assert len(res.content) > 100, ref
        if re.search(r"-\d+\.\d+\.\d+\.", ref):
            assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
        else:
            assert res.headers["cache-control"] == "no-cache"
    graphiql = httpx.get(base + "/graphiql/graphiql-3.8.3.min.js").text
    assert "sourceMappingURL" not in graphiql[-200:], "no request for a map that is not there"


def test_licenses_ship_with_the_assets(fake_server: Server) -> None:
    base = f"http://127.0.0.1:{fake_server.port}/graphiql/"
    for name in ("LICENSE.graphiql.txt", "LICENSE.react.txt", "LICENSE.react-dom.txt"):
        res = httpx.get(base + name)
        assert res.status_code == 200 and "MIT License" in res.text, name
    vendor = httpx.get(base + "VENDOR.md").text
    for name in ASSETS:
        assert name in vendor or name == "VENDOR.md", name
    package = Path(__file__).resolve().parents[2] / "app/graphql/static/graphiql"
    assert {p.name for p in package.iterdir()} - {"graphiql.html"} == set(ASSETS)


def test_unknown_names_and_paths_are_404(fake_server: Server) -> None:
    base = f"http://127.0.0.1:{fake_server.port}/graphiql/"
    for name in ("graphiql.html", "nope.js", "..%2F..%2Fsettings.py", "%2e%2e%2fview.py"):
        assert httpx.get(base + name).status_code == 404, name


def test_graphiql_can_be_turned_off(tmp_path: Path, fakes: Fakes) -> None:
    with running_server(tmp_path / "data", fakes.adapters, graphiql=False) as server:
        res = page(server)
        assert res.status_code == 404
        assert "SLIPWAY_GRAPHIQL=false" in res.text
        base = f"http://127.0.0.1:{server.port}/graphiql/"
        assert httpx.get(base + "graphiql-3.8.3.min.js").status_code == 404
        key = server.key()
        answer = httpx.post(
            server.url, json={"query": "{ __typename }"}, headers={"x-api-key": key}
        )
        assert answer.json() == {"data": {"__typename": "Query"}}, "the API stays on"
