"""Helpers shared by the issue 9 input/secret attack tests (real HTTP to a real server)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import func, select

from app.db.models import Application, Deployment
from tests.e2e.harness import Client, Server

APP_FIELDS = (
    "id appName registryUsername hasRegistryPassword dockerImage buildArgs buildArgKeys "
    "mounts { type source target readOnly }"
)
CREATE = (
    "mutation($input: CreateApplicationInput!) "
    f"{{ createApplication(input: $input) {{ {APP_FIELDS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $input: UpdateApplicationInput!) "
    f"{{ updateApplication(id: $id, input: $input) {{ {APP_FIELDS} }} }}"
)
APP = f"query($id: ID!) {{ application(id: $id) {{ {APP_FIELDS} }} }}"


def rows(server: Server, model: type[Any] = Application) -> int:
    with server.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def counts(server: Server) -> tuple[int, int]:
    return rows(server, Application), rows(server, Deployment)


def refused(client: Client, query: str, *codes: str, **variables: Any) -> dict[str, Any]:
    """The first error of a request that must fail with one of ``codes`` and no data."""
    body = client.raw(query, **variables)
    assert body.get("errors"), f"accepted: {body}"
    assert not any((body.get("data") or {}).values()), body
    error: dict[str, Any] = body["errors"][0]
    assert error.get("extensions", {}).get("code") in codes, error
    return error


def answers_quickly(server: Server, limit_s: float = 1.0) -> None:
    """``/healthz`` right after an attack: 200, within ``limit_s`` (a shared CI machine)."""
    started = time.monotonic()
    res = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)
    took = time.monotonic() - started
    assert res.status_code == 200 and took < limit_s, (res.status_code, took)
