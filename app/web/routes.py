"""The pages at /ui/: static files from the package, served with a strict Content-Security-Policy.

The pages hold no data and need no key: the browser script asks for the user's API key, keeps
it in sessionStorage and sends it with every call (``x-api-key`` over HTTP, ``apiKey`` in the
WebSocket ``connection_init``), never in a URL. Every file is read once from the package and
kept in memory, so an unauthenticated request costs a dictionary look-up.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

# Only the page's own scripts, styles and connections (fetch and WebSocket to this origin);
# no inline script or style, no frames, no forms posting anywhere, no <base>.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = ("ansi.js", "gqlws.js", "common.js", "list.js", "viewer.js", "style.css", "favicon.svg")


@cache
def _file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _send(name: str) -> Response:
    media_type = TYPES[name[name.rindex(".") :]]
    return Response(_file(name), media_type=media_type, headers=HEADERS)


async def index(_: Request) -> Response:
    return _send("index.html")


async def deployment(_: Request) -> Response:
    """The same page for every id: its script reads the id from the path."""
    return _send("deployment.html")


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain", headers=HEADERS)
    return _send(name)


async def to_index(_: Request) -> Response:
    return RedirectResponse("/ui/", status_code=308)


def ui_routes() -> list[BaseRoute]:
    return [
        Route("/ui", to_index),
        Route("/ui/", index),
        Route("/ui/deployments/{deployment_id}", deployment),
        Route("/ui/assets/{name}", asset),
    ]
