"""`slipway serve` without a Docker engine, /readyz, and the README's first example as
written (an INGRESS port, healthCheckPath "/") on the real engine."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.engine.adapters import real_adapters
from app.types import Scope
from tests.e2e.conftest import wait_finished
from tests.e2e.harness import Client, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.processes import create_api_key, start_serve


def _env(data_dir: Path, docker_host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update(SLIPWAY_DATA_DIR=str(data_dir), DOCKER_HOST=docker_host)
    return env


def test_serve_without_an_engine_answers_and_says_why_deployments_fail(
    tmp_path: Path, git_repo: Any
) -> None:
    dead = f"unix://{tmp_path}/nothing-listens.sock"
    env = _env(tmp_path / "data", dead)
    port = free_port()
    proc = start_serve(env, tmp_path / "serve.log", port=port)
    try:
        key = create_api_key(env)
        client = Client(f"http://127.0.0.1:{port}/graphql", key)
        assert client("{ applications(first: 5) { edges { node { id } } } }")
        app = client(
            CREATE_APP,
            input={
                "name": "noengine",
                "sourceType": "GIT",
                "repository": f"file://{git_repo('static-ok')}",
                "branch": "main",
                "ports": [{"publishedPort": free_port(), "targetPort": 8080}],
            },
        )["createApplication"]
        dep = client(DEPLOY, id=app["id"])["deployApplication"]
        done = wait_finished(client, dep["id"], timeout=60)
        assert done["status"] == "ERROR"
        assert f"cannot reach the Docker engine at {dead}" in done["errorMessage"]
        history = client("{ deployments(first: 5) { edges { node { id status } } } }")
        assert [e["node"]["id"] for e in history["deployments"]["edges"]] == [dep["id"]]
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()

        keyless = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert keyless.status_code == 503
        body = keyless.json()
        assert body["checks"]["docker"] == {"state": "down", "reason": "not reachable"}
        assert body["checks"]["database"]["state"] == "up"
        assert dead not in keyless.text, "no address without a key"
        keyed = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"x-api-key": key})
        assert keyed.status_code == 503
        assert dead in keyed.json()["checks"]["docker"]["reason"]
        with httpx.Client(timeout=5) as http:  # one connection: the server's cost shows
            started = time.monotonic()
            for _ in range(50):  # cached: keyless callers cost no engine check each
                assert http.get(f"http://127.0.0.1:{port}/readyz").status_code == 503
            per_call = (time.monotonic() - started) / 50
        assert proc.alive()
        assert per_call < 0.02, f"{per_call * 1000:.1f} ms per keyless /readyz"
        assert "Traceback" not in proc.tail(200)
    finally:
        proc.stop()


@pytest.mark.docker
def test_readyz_is_200_with_the_real_engine(tmp_path: Path, docker_client: Any) -> None:  # noqa: ARG001
    with running_server(tmp_path / "data", real_adapters) as server:
        res = httpx.get(server.url.replace("/graphql", "/readyz"), timeout=10)
        assert res.status_code == 200, res.text
        assert {n: c["state"] for n, c in res.json()["checks"].items()} == {
            "database": "up",
            "docker": "up",
        }


@pytest.mark.docker
def test_the_readme_first_example_ends_done(
    tmp_path: Path, git_repo: Any, docker_client: Any, cleanup: list[str]
) -> None:
    """Default settings (vip, fallback host), an INGRESS port and healthCheckPath "/"."""
    with running_server(tmp_path / "data", real_adapters, health_timeout=120) as server:
        admin = server.client(Scope.ADMIN)
        port = free_port()
        app = admin(
            CREATE_APP,
            input={
                "name": f"hello-{uuid.uuid4().hex[:6]}",
                "sourceType": "GIT",
                "repository": f"file://{git_repo('static-ok')}",
                "branch": "main",
                "buildType": "DOCKERFILE",
                "ports": [{"publishedPort": port, "targetPort": 8080}],
                "env": [{"key": "GREETING", "value": "hi"}],
                "healthCheckPath": "/",
            },
        )["createApplication"]
        cleanup.append(app["appName"])
        client = server.client(Scope.DEPLOY)
        dep = client(DEPLOY, id=app["id"])["deployApplication"]
        done = wait_finished(client, dep["id"], timeout=180)
        assert done["status"] == "DONE", done["errorMessage"]
        assert "hello from slipway" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
        log = Path(done["logPath"]).read_text()
        routes = "routing mesh routes on this engine" in log
        if not routes:
            assert "in host mode instead of INGRESS" in log, log[-2000:]
