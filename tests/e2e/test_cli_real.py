"""The CLI against a server deploying for real (git, Docker builds, Swarm): a pipeline's
`slipway deploy APP --follow` exits 0 once the service answers, 1 when the build fails."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.cli_support import ANSI, json_lines, server_root, slipway
from tests.e2e.conftest import create_git_app
from tests.e2e.harness import Server

pytestmark = pytest.mark.docker


def test_deploy_follow_a_real_build_to_done_and_a_broken_one_to_error(
    real_server: Server, git_repo: Any, cleanup: list[str]
) -> None:
    url, key = server_root(real_server.url), real_server.key(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("static-ok"), cleanup, healthCheckPath="/health")
    done = slipway(url, key, "deploy", app["id"], "--follow", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out.index("==> BUILD_IMAGE") < out.index("==> RELEASE") < out.index("==> VERIFY_HEALTH")
    assert any("COPY" in line or "Step" in line for line in out), "the build's own output"
    assert not ANSI.search(done.stdout) and " DONE" in done.stderr.splitlines()[-1]
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=10) as res:
        assert "hello from slipway" in res.read().decode()

    create_git_app(real_server, git_repo("broken"), cleanup, name="broken")
    failed = slipway(url, key, "deploy", "broken", "--follow", "-o", "json", timeout=240)
    assert failed.returncode == 1, failed.stderr[-3000:]
    end = json_lines(failed.stdout)[-1]
    assert (end["type"], end["status"]) == ("deployment", "ERROR")
    assert "build" in end["errorMessage"].lower()
    assert [s["outcome"] for s in end["steps"]][-1] == "ERROR"
