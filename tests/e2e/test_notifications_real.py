"""Notifications in distributed mode with the real engine: a `slipway worker` process
deploys a real git/Docker/Swarm application and its sender threads deliver the message
through the Redis broker (a failed first send retried as a delayed Redis message) to a real
endpoint; the worker's log never holds the URL's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.types import Scope
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import DEPLOY
from tests.e2e.test_distributed import Workers, distributed, pytestmark  # noqa: F401
from tests.e2e.test_notifications import CREATE, ONE, TOKEN, wait_for
from tests.support.notify_endpoint import endpoint


def test_a_worker_process_announces_a_real_deployment_through_redis(
    distributed: tuple[Server, Workers],  # noqa: F811
    git_repo: Any,
    docker_client: Any,
    cleanup: list[str],
    tmp_path: Path,
) -> None:
    server, workers = distributed
    workers.start(SLIPWAY_NOTIFY_BACKOFF="0.5", SLIPWAY_PUBLIC_URL="https://ops.example.com")
    admin = server.client(Scope.ADMIN)
    app = create_git_app(server, git_repo("static-ok"), cleanup, name="noted")
    with endpoint(fail_first=1) as hook:
        note = admin(
            CREATE, input={"name": "ops", "url": hook.url(), "events": ["DEPLOY_SUCCEEDED"]}
        )["createNotification"]
        dep = admin(DEPLOY, id=app["id"])["deployApplication"]
        done = wait_finished(admin, dep["id"], timeout=180)
        assert done["status"] == "DONE", done["errorMessage"]
        first, second = hook.wait(2, timeout=30)
        assert (first.status, second.status) == (500, 200)
        assert second.at - first.at >= 0.45, "retried after the backoff"
        message = second.body["message"]
        assert second.body["title"] == "[Slipway] noted: deployment succeeded"
        assert f"Commit: {done['commitSha'][:12]}" in message
        assert "Trigger: MANUAL" in message and "Duration: " in message
        assert f"https://ops.example.com/ui/deployments/{dep['id']}" in message
        row = wait_for(lambda: (n := admin(ONE, id=note["id"])["notification"])["lastSentAt"] and n)
        assert row["lastError"] is None
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert "notification delivery" in logs, "the worker logged the failed attempt"
    assert TOKEN not in logs
