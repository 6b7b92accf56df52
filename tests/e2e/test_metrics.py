"""``/metrics`` over real HTTP, read with prometheus-client's own parser: the counts after a
deployment, the subscriber gauge while a subscription streams, webhook deliveries, the
queue from the database, who may scrape, and the Grafana dashboard's expressions."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, create_git_app, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.metrics_support import metrics_url, scrape, scrape_until
from tests.e2e.queries import APP_STATUS_SUB, CREATE_APP, DEPLOY, REDEPLOY
from tests.fixtures.webhooks.samples import encode, signed_headers

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana-dashboard.json"
TOKEN = "prometheus-scrapes-with-this-token"
SCHEDULE = """
mutation($id: ID!, $at: DateTime) {
  deployApplication(applicationId: $id, scheduledAt: $at) { id status } }"""
UPDATE_APP = """
mutation($id: ID!, $input: UpdateApplicationInput!) {
  updateApplication(id: $id, input: $input) { id } }"""
REGENERATE = "mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }"
FINISHED = "slipway_deployments_finished_total"
STEP_COUNT = "slipway_step_duration_seconds_count"
LINES = "slipway_log_lines_published_total"
SUBSCRIBERS = "slipway_subscribers"
WEBHOOKS = "slipway_webhook_deliveries_total"


@pytest.fixture
def server(tmp_path: Path, fakes: Fakes) -> Any:
    with running_server(tmp_path / "data", fakes.adapters, metrics_token=TOKEN) as running:
        yield running


def test_a_deployment_is_counted_by_status_trigger_steps_and_lines(server: Server) -> None:
    key = server.key(Scope.READ)
    before = scrape(server.url, key=key)
    client = server.client(Scope.DEPLOY)
    app = client(CREATE_APP, input=GIT_APP())["createApplication"]
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    done = wait_finished(client, dep["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    after = scrape(server.url, key=key)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(FINISHED, status="DONE", trigger="MANUAL") == 1
    assert after.total(FINISHED) - before.total(FINISHED) == 1  # nothing else finished
    steps = [s["step"] for s in done["steps"]]
    assert steps == ["FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH"]
    for step in done["steps"]:
        assert delta(STEP_COUNT, step=step["step"], outcome="DONE") == 1, step
        seconds = delta("slipway_step_duration_seconds_sum", step=step["step"], outcome="DONE")
        assert abs(seconds - step["durationMs"] / 1000) < 0.002, (step, seconds)
        inf = delta("slipway_step_duration_seconds_bucket", step=step["step"], outcome="DONE",
                    le="+Inf")  # fmt: skip
        assert inf == 1
    assert after.total(STEP_COUNT) - before.total(STEP_COUNT) == len(steps)
    assert delta(LINES) == len(done["logs"]) > 5  # every line the log holds, once
    assert after.families["slipway_step_duration_seconds"] == "histogram"
    assert after.families["slipway_deployments_finished"] == "counter"


def test_the_queue_gauges_come_from_the_database(server: Server) -> None:
    key = server.key(Scope.READ)
    client = server.client(Scope.DEPLOY)
    app = client(CREATE_APP, input=GIT_APP())["createApplication"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    dep = client(SCHEDULE, id=app["id"], at=later)["deployApplication"]
    assert dep["status"] == "SCHEDULED"
    got = scrape_until(server.url, key, lambda s: s.value("slipway_queue_depth", state="SCHEDULED"))
    assert got.value("slipway_queue_depth", state="SCHEDULED") == 1
    assert got.value("slipway_queue_depth", state="QUEUED") == 0
    assert got.value("slipway_deployments_running") == 0
    assert got.value("slipway_database_up") == 1
    endpoint = server.server.config.app.state.metrics  # type: ignore[attr-defined]
    asked = endpoint.queue.queries
    for _ in range(5):  # a burst within the cache period costs no query
        scrape(server.url, key=key)
    assert endpoint.queue.queries - asked <= 1


def test_the_subscriber_gauge_follows_open_subscriptions(server: Server) -> None:
    key = server.key(Scope.READ)
    client = server.client(Scope.DEPLOY)
    app = client(CREATE_APP, input=GIT_APP())["createApplication"]
    base = scrape(server.url, key=key)
    ws0 = base.value(SUBSCRIBERS, transport="websocket")
    sse0 = base.value(SUBSCRIBERS, transport="sse")

    sub = server.subscribe(APP_STATUS_SUB, id=app["id"])
    try:
        next(sub.messages(30))  # the current state: the subscription runs
        got = scrape(server.url, key=key)
        assert got.value(SUBSCRIBERS, transport="websocket") == ws0 + 1
        body = {"query": APP_STATUS_SUB, "variables": {"id": app["id"]}}
        headers = {"accept": "text/event-stream", "x-api-key": key}
        with (
            httpx.Client(timeout=30) as http,
            http.stream("POST", server.url, json=body, headers=headers) as res,
        ):
            assert res.status_code == 200
            lines = res.iter_lines()
            while not next(lines).startswith("data:"):
                pass
            got = scrape(server.url, key=key)
            assert got.value(SUBSCRIBERS, transport="sse") == sse0 + 1
            assert got.value(SUBSCRIBERS, transport="websocket") == ws0 + 1
    finally:
        sub.close()
    scrape_until(
        server.url,
        key,
        lambda s: (
            s.value(SUBSCRIBERS, transport="websocket") == ws0
            and s.value(SUBSCRIBERS, transport="sse") == sse0
        ),
    )


def test_webhook_deliveries_are_counted_by_outcome(server: Server) -> None:
    key = server.key(Scope.READ)
    admin = server.client(Scope.ADMIN)
    app = admin(CREATE_APP, input=GIT_APP(sourceType="GITHUB"))["createApplication"]
    secret = admin(REGENERATE, id=app["id"])["regenerateWebhookSecret"]
    url = f"http://127.0.0.1:{server.port}/webhooks/github/{app['id']}"
    before = scrape(server.url, key=key)
    ping = encode({"zen": "Keep it logically awesome.", "hook_id": 1})
    with httpx.Client(timeout=30) as http:
        good = signed_headers("github", "ping", ping, secret, delivery="d1")
        bad = signed_headers("github", "ping", ping, "not-the-secret", delivery="d2")
        signed = http.post(url, content=ping, headers=good)
        forged = http.post(url, content=ping, headers=bad)
        unsigned = http.post(url, content=ping, headers={"x-github-event": "ping"})
        unknown = http.post(url.replace("/github/", "/svn/"), content=ping)
    assert signed.status_code == 200 and signed.json()["outcome"] == "pong", signed.text
    assert (forged.status_code, unsigned.status_code, unknown.status_code) == (401, 401, 404)
    after = scrape(server.url, key=key)

    def delta(**labels: str) -> float:
        return after.value(WEBHOOKS, **labels) - before.value(WEBHOOKS, **labels)

    assert delta(provider="github", outcome="pong") == 1
    assert delta(provider="github", outcome="unauthorized") == 2
    assert delta(provider="unknown", outcome="unknown_provider") == 1
    assert {d["provider"] for d in after.labels_of(WEBHOOKS)} <= {"github", "unknown"}


def test_who_may_scrape(server: Server) -> None:
    url = metrics_url(server.url)
    read = server.key(Scope.READ)
    with httpx.Client(timeout=30) as http:
        assert http.get(url, headers={"x-api-key": read}).status_code == 200
        assert http.get(url, headers={"authorization": f"Bearer {read}"}).status_code == 200
        assert http.get(url, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        for headers in ({}, {"x-api-key": "sk_wrong"}, {"authorization": f"Bearer {TOKEN}x"},
                        {"authorization": f"Basic {TOKEN}"}):  # fmt: skip
            res = http.get(url, headers=headers)
            assert res.status_code == 401, (headers, res.text)
            assert res.headers["www-authenticate"] == "Bearer"
            assert "slipway_" not in res.text and TOKEN not in res.text


def test_a_request_without_a_key_is_refused_before_anything_is_collected(
    server: Server,
) -> None:
    endpoint = server.server.config.app.state.metrics  # type: ignore[attr-defined]
    url = metrics_url(server.url)
    asked = endpoint.queue.queries
    took: list[float] = []
    with httpx.Client(timeout=30) as http:
        http.get(url)  # the connection is open before timing
        for _ in range(60):
            start = time.perf_counter()
            res = http.get(url)
            took.append(time.perf_counter() - start)
            assert res.status_code == 401
    assert endpoint.queue.queries == asked  # not one database query, not one collection
    # loopback round trips on a loaded 2-core machine: a refusal is a dict lookup away
    assert statistics.median(took) < 0.010, sorted(took)[:: len(took) // 6]


def test_scrapes_in_parallel_with_a_running_deployment(server: Server, fakes: Fakes) -> None:
    """A scrape while a deployment writes its log sees a consistent, parseable text."""
    key = server.key(Scope.READ)
    client = server.client(Scope.DEPLOY)
    app = client(CREATE_APP, input=GIT_APP())["createApplication"]
    fakes.builder.lines, fakes.builder.delay_s = 300, 0.002
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    seen: list[float] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            seen.append(scrape(server.url, key=key).value(LINES))

    thread = threading.Thread(target=scraper)
    thread.start()
    try:
        done = wait_finished(client, dep["id"])
    finally:
        stop.set()
        thread.join(30)
    assert done["status"] == "DONE"
    assert seen == sorted(seen) and len(seen) > 2  # a counter never goes back


def test_the_grafana_dashboard_graphs_only_exported_metrics(server: Server) -> None:
    exported = scrape(server.url, key=server.key(Scope.READ))
    names = set(exported.families) | {n for n, _ in exported.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert panels, "no panels"
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert len(exprs) >= len(panels)
    used: set[str] = set()
    for expr in exprs:
        found = set(re.findall(r"\bslipway_[a-z_]+", expr))
        assert found, f"no slipway metric in {expr!r}"
        assert found <= names, f"{expr!r} names {found - names}, not exported"
        used |= found
    families = {n for n in exported.families if n.startswith("slipway_")}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


@pytest.mark.docker
def test_a_real_deployment_and_a_failed_one_are_counted(
    real_server: Server, git_repo: Any, cleanup: list[str]
) -> None:
    """A real git fetch, Dockerfile build and Swarm release, then a redeploy with a health
    path that never answers: DONE and ERROR counted, VERIFY_HEALTH's ERROR in the histogram."""
    key = real_server.key(Scope.READ)
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("static-ok"), cleanup, healthCheckPath="/health")
    before = scrape(real_server.url, key=key)
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    done = wait_finished(client, dep["id"], timeout=180)
    assert done["status"] == "DONE", done["errorMessage"]
    client(UPDATE_APP, id=app["id"], input={"healthCheckPath": "/missing", "healthTimeout": 5})
    again = client(REDEPLOY, id=app["id"])["redeployApplication"]
    failed = wait_finished(client, again["id"], timeout=180)
    assert failed["status"] == "ERROR"
    after = scrape(real_server.url, key=key)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(FINISHED, status="DONE", trigger="MANUAL") == 1
    assert delta(FINISHED, status="ERROR", trigger="REBUILD") == 1
    for step in done["steps"]:
        assert delta(STEP_COUNT, step=step["step"], outcome="DONE") >= 1, step
    assert delta(STEP_COUNT, step="BUILD_IMAGE", outcome="DONE") == 2
    assert delta(STEP_COUNT, step="VERIFY_HEALTH", outcome="ERROR") == 1
    assert delta(LINES) == len(done["logs"]) + len(failed["logs"])
