"""The /ui/ pages over real HTTP: static, no key needed, a strict CSP, nothing but our files."""

from __future__ import annotations

import re

import httpx

from app.web.routes import ASSETS
from tests.e2e.harness import Server

BASE = "http://127.0.0.1:{port}"


def test_the_pages_load_without_a_key_and_carry_a_strict_policy(fake_server: Server) -> None:
    base = BASE.format(port=fake_server.port)
    for path in ("/ui/", "/ui/deployments/01abc"):
        res = httpx.get(base + path)
        assert res.status_code == 200, path
        assert res.headers["content-type"] == "text/html; charset=utf-8"
        csp = res.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["x-frame-options"] == "DENY"
        # no inline script or style, no asset from elsewhere
        assert not re.search(r"<script(?![^>]*\bsrc=)", res.text)
        assert "<style" not in res.text and " style=" not in res.text
        assert not re.search(r"(src|href)=\"(?!/ui/)", res.text)
    assert httpx.get(base + "/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_every_asset_is_served_from_the_package_and_nothing_else(fake_server: Server) -> None:
    base = BASE.format(port=fake_server.port)
    for name in ASSETS:
        res = httpx.get(f"{base}/ui/assets/{name}")
        assert res.status_code == 200, name
        assert res.content, name
        assert "content-security-policy" in res.headers
    for name in ("../routes.py", "%2e%2e%2froutes.py", "index.html", "nope.js", "__init__.py"):
        assert httpx.get(f"{base}/ui/assets/{name}").status_code == 404, name
