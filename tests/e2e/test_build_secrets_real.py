"""A build secret through the API on the real engine: the deployment builds with BuildKit,
its RUN step reads the secret, and the secret is nowhere afterwards: not in a layer,
docker history, the image config, the service spec, the log, a response or the
database in clear."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.types import Scope
from tests.conftest import APPS, make_git_repo
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server, running_server
from tests.integration.builders.test_buildkit_secrets import buildkit_cli
from tests.support.image_layers import places_holding

pytestmark = pytest.mark.docker

DEPLOY = "mutation($id: ID!) { deployApplication(applicationId: $id) { id } }"
APP = """query($id: ID!) { application(id: $id) { id buildSecretKeys dockerBuildStage
  buildArgKeys } }"""


@pytest.fixture
def secret_server(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    with running_server(
        tmp_path / "data",
        real_adapters,
        endpoint_mode="dnsrr",
        health_timeout=60,
        docker_cli=buildkit_cli(),
    ) as server:
        yield server


def test_a_deployment_with_a_build_secret_leaves_it_nowhere(
    secret_server: Server, tmp_path: Path, cleanup: list[str], docker_client: Any
) -> None:
    secret = f"npm-token-{uuid.uuid4().hex}"
    src = tmp_path / "src"
    shutil.copytree(APPS / "static-ok", src)
    (src / "Dockerfile").write_text(
        "FROM busybox:1.36 AS web\n"
        f"RUN --mount=type=secret,id=npm_token sha256sum /run/secrets/npm_token # {uuid.uuid4()}\n"
        "COPY www /www\nEXPOSE 8080\n"
        'CMD ["httpd","-f","-v","-p","8080","-h","/www"]\n'
        "FROM busybox:1.36 AS unused\nRUN exit 8\n"
    )
    repo = make_git_repo(src, tmp_path / "repo")
    app = create_git_app(
        secret_server,
        repo,
        cleanup,
        name="sec",
        dockerBuildStage="web",
        buildSecrets=[{"id": "npm_token", "value": secret}],
        healthCheckPath="/health",
    )
    client = secret_server.client(Scope.DEPLOY)
    shown = client.raw(APP, id=app["id"])
    assert shown["data"]["application"]["buildSecretKeys"] == ["npm_token"]
    assert secret not in json.dumps(shown)

    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert done["status"] == "DONE", done["errorMessage"]
    messages = [line["message"] for line in done["logs"]]
    assert any(hashlib.sha256(secret.encode()).hexdigest() in m for m in messages)
    assert any("Building with BuildKit (1 build secrets mounted" in m for m in messages)
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert b"hello from slipway" in res.read()

    image = done["imageRef"]
    assert places_holding(docker_client, image, secret, tmp_path) == []
    spec = docker_client.services.get(app["appName"]).attrs
    assert secret not in json.dumps(spec), "not in the service spec or its labels"
    assert secret not in Path(done["logPath"]).read_text()
    data = Path(secret_server.settings.data_dir)
    for path in data.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"{path} holds it in clear"
