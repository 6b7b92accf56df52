"""Preview deployments through signed webhooks, on the real engine: a pull request opened
deploys its head commit as its own Swarm service on its own port; closing it removes the
service, the preview application and its images."""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import wait_finished
from tests.e2e.harness import Server, free_port
from tests.e2e.queries import CREATE_APP
from tests.fixtures.webhooks.samples import encode, pull_request, signed_headers

pytestmark = pytest.mark.docker

REGENERATE = "mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }"
ASKED = "query($id: ID!) { deployment(id: $id) { trigger requestedCommitSha sourceRef } }"
APPLICATION = "query($id: ID!) { application(id: $id) { id appName previewNumber } }"


def _feature_commit(bare: Path) -> str:
    """Push a ``feature`` branch whose page says so; return its commit."""
    work = bare.parent / "work"
    git = ["git", "-C", str(work), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "checkout", "-q", "-b", "feature"], check=True)
    (work / "www" / "index.html").write_text("preview of the feature branch\n")
    subprocess.run([*git, "commit", "-q", "-am", "Feature page"], check=True)
    subprocess.run([*git, "push", "-q", str(bare), "feature"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return sha.stdout.strip()


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as res:
        body: str = res.read().decode()
        return body


def _deliver(server: Server, app_id: str, secret: str, kind: str, **pr: Any) -> httpx.Response:
    body = encode(pull_request("github", kind, **pr))
    headers = signed_headers("github", kind, body, secret, delivery=str(uuid.uuid4()))
    url = f"http://127.0.0.1:{server.port}/webhooks/github/{app_id}"
    return httpx.post(url, content=body, headers=headers, timeout=30)


def test_a_pull_request_gets_its_own_preview_until_it_is_closed(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client()
    bare = git_repo("static-ok")
    sha = _feature_commit(bare)
    base = free_port() - 7
    parent = client(
        CREATE_APP,
        input={
            "name": "web",
            "sourceType": "GITHUB",
            "repository": f"file://{bare}",
            "branch": "main",
            "ports": [{"publishedPort": free_port(), "targetPort": 8080, "publishMode": "HOST"}],
            "previewEnabled": True,
            "previewPortBase": base,
            "previewDomain": "preview.test",
            "previewEnv": [{"key": "MODE", "value": "preview-secret-value"}],
        },
    )["createApplication"]
    preview_name = f"{parent['appName']}-pr-7"
    cleanup.append(preview_name)
    secret = client(REGENERATE, id=parent["id"])["regenerateWebhookSecret"]

    opened = _deliver(
        real_server, parent["id"], secret, "pr_open", number=7, head_ref="feature", sha=sha
    )
    assert opened.status_code == 202, opened.text
    dep = wait_finished(client, opened.json()["deploymentId"], timeout=180)
    assert dep["status"] == "DONE", dep["errorMessage"]
    assert dep["commitSha"] == sha, "the pull request's head commit is what was built"
    asked = client(ASKED, id=dep["id"])["deployment"]
    assert asked == {"trigger": "PULL_REQUEST", "requestedCommitSha": sha, "sourceRef": "feature"}
    assert "preview of the feature branch" in _get(base + 7)

    service = docker_client.services.get(preview_name)
    spec = service.attrs["Spec"]
    assert spec["Labels"]["slipway.domain"] == f"pr-7-{parent['appName']}.preview.test"
    assert "MODE=preview-secret-value" in spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "preview-secret-value" not in str(spec["Labels"])
    preview_id = spec["Labels"]["slipway.application"]
    assert client(APPLICATION, id=preview_id)["application"]["previewNumber"] == 7
    assert docker_client.images.list(name=f"slipway/{preview_name}"), "the preview's image"

    closed = _deliver(
        real_server, parent["id"], secret, "pr_close", number=7, head_ref="feature", sha=sha
    )
    assert closed.status_code == 200 and closed.json()["outcome"] == "closed", closed.text
    deadline = time.monotonic() + 60
    while docker_client.services.list(filters={"name": preview_name}) or docker_client.images.list(
        name=f"slipway/{preview_name}"
    ):
        assert time.monotonic() < deadline, "the closed preview's service and image stay"
        time.sleep(0.5)
    assert client(APPLICATION, id=preview_id)["application"] is None
    assert client(APPLICATION, id=parent["id"])["application"] is not None
