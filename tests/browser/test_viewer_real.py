"""The viewer following a real deployment: git, a Docker build, a Swarm service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.logs.files import read_after
from app.types import Scope
from tests.browser.conftest import open_with_key, read_key, screenshot
from tests.e2e.conftest import cleanup, create_git_app, wait_finished  # noqa: F401 (a fixture)
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import DEPLOY

pytestmark = pytest.mark.docker


@pytest.fixture
def real_server(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    with running_server(
        tmp_path / "data", real_adapters, endpoint_mode="dnsrr", health_timeout=60
    ) as server:
        yield server


def test_a_real_deployment_is_followed_to_done(
    page: Any,
    real_server: Server,
    git_repo: Any,
    cleanup: list[str],  # noqa: F811
) -> None:
    app = create_git_app(real_server, git_repo("static-ok"), cleanup, healthCheckPath="/")
    client = real_server.client(Scope.DEPLOY)
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    open_with_key(
        page,
        f"http://127.0.0.1:{real_server.port}/ui/deployments/{dep['id']}",
        read_key(real_server),
    )
    page.wait_for_function(
        "() => document.getElementById('status').textContent === 'DONE'", timeout=180_000
    )
    page.wait_for_function("() => window.slipwayViewer.state.logComplete", timeout=30_000)
    done = wait_finished(client, dep["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    on_disk = read_after(Path(done["logPath"]), 0)
    shown = page.evaluate("[window.slipwayViewer.log.seq, window.slipwayViewer.log.step]")
    assert shown == [[x.seq for x in on_disk], [x.step for x in on_disk]]
    steps = page.eval_on_selector_all("#steps li .name", "els => els.map(e => e.textContent)")
    assert steps == ["FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH"]
    assert page.locator("#rows .row .step", has_text="BUILD_IMAGE").count() > 0
    assert page.errors == []
    print("screenshot:", screenshot(page, "viewer-real-done"))
