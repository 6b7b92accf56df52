"""GraphiQL offline: the explorer's page and its assets, all from the package.

A browser GET of ``/graphql`` gets ``static/graphiql/graphiql.html``; it loads React,
ReactDOM and GraphiQL (pinned versions, their licenses beside them; see
``static/graphiql/VENDOR.md``) and Slipway's own page script from ``/graphiql/<name>``,
nothing from another host. Assets whose name carries their version are cached for a year
(``immutable``); the page and Slipway's own files are revalidated. Every file is read once
and kept in memory. ``SLIPWAY_GRAPHIQL=false`` turns the page and its assets into 404s.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from app.settings import Settings

# GraphiQL styles elements inline (React style props, CodeMirror) and embeds its fonts as
# data: URIs; scripts and connections (fetch, WebSocket) only to this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE = "graphiql.html"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
ASSETS = frozenset(
    {
        "react-18.2.0.production.min.js",
        "react-dom-18.2.0.production.min.js",
        "graphiql-3.8.3.min.js",
        "graphiql-3.8.3.min.css",
        "slipway-graphiql.js",
        "slipway-graphiql.css",
        "LICENSE.graphiql.txt",
        "LICENSE.react.txt",
        "LICENSE.react-dom.txt",
        "VENDOR.md",
    }
)
IMMUTABLE = "public, max-age=31536000, immutable"
_VERSIONED = re.compile(r"-\d+\.\d+\.\d+\.")
_COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@cache
def _file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", "graphiql", name).read_bytes()


def page() -> Response:
    """The explorer's page (no key needed: it holds no data)."""
    headers = {**_COMMON, "Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return Response(_file(PAGE), media_type="text/html; charset=utf-8", headers=headers)


def turned_off() -> Response:
    return PlainTextResponse(
        "GraphiQL is turned off on this server (SLIPWAY_GRAPHIQL=false)", status_code=404
    )


def graphiql_routes(settings: Settings) -> list[BaseRoute]:
    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if not settings.graphiql:
            return turned_off()
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404, headers=_COMMON)
        cache_control = IMMUTABLE if _VERSIONED.search(name) else "no-cache"
        media_type = TYPES[name[name.rindex(".") :]]
        headers = {**_COMMON, "Cache-Control": cache_control}
        return Response(_file(name), media_type=media_type, headers=headers)

    return [Route("/graphiql/{name}", asset)]
