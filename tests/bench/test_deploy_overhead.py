"""Benchmark: one Dockerfile app deployed through the API vs. by hand with git and docker.

Both paths deploy tests/apps/static-ok from the same bare repository with a warm build
cache, each to its own Swarm service on its own host port, and count as done only once the
service has converged and the port answers: the API path when ``deploymentStatus`` says
DONE (VERIFY_HEALTH checks convergence, running tasks and the port), the raw path when
``docker service create/update`` (which waits for convergence) has returned and
``GET /`` answers 200. Runs alternate to spread the noise of a shared machine. Figures are
printed; only correctness is asserted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.types import Scope
from tests.bench.raw_docker import HTTPD, RawDeployer, wait_http_ok
from tests.bench.stats import median, seconds
from tests.e2e.conftest import TERMINAL
from tests.e2e.harness import Client, Server, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY, STATUS_SUB

pytestmark = pytest.mark.docker

RUNS = 5
STEPS = ("FETCH_SOURCE", "BUILD_IMAGE", "RELEASE", "VERIFY_HEALTH")
DEPLOYMENT_STEPS = """
query($id: ID!) { deployment(id: $id) { status errorMessage steps { step outcome durationMs } } }"""
DEPLOYMENT_LOG = """
query($id: ID!) {
  deployment(id: $id) { logs(afterSeq: 0, limit: 10000) { timestamp step message } } }"""


@pytest.fixture
def names(docker_client: Any) -> Iterator[dict[str, str]]:
    """Service names for both paths; their services, containers and images go afterwards."""
    run = uuid.uuid4().hex[:8]
    made = {"api": f"bench-api-{run}", "raw": f"bench-raw-{run}"}
    yield made
    for name in made.values():
        for service in docker_client.services.list(filters={"name": name}):
            service.remove()
    labels = [f"com.docker.swarm.service.name={n}" for n in made.values()]
    deadline = time.monotonic() + 30
    while any(docker_client.containers.list(all=True, filters={"label": x}) for x in labels):
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for repository in (f"slipway/{made['api']}", f"bench-raw/{made['raw']}"):
        for image in docker_client.images.list(name=repository):
            docker_client.images.remove(image.id, force=True)


class ApiDeployer:
    """deployApplication, then follow deploymentStatus until the deployment ends."""

    def __init__(self, server: Server, repo: Path, name: str) -> None:
        self.server = server
        self.client: Client = server.client(Scope.DEPLOY)
        self.port = free_port()
        ports = [{"publishedPort": self.port, "targetPort": 8080, "publishMode": "HOST"}]
        app = {
            "name": name,
            "appName": name,
            "sourceType": "GIT",
            "repository": f"file://{repo}",
            "branch": "main",
            "ports": ports,
            "command": list(HTTPD),
        }
        admin = server.client(Scope.ADMIN)  # a file:// repository needs ADMIN to set
        self.app_id = admin(CREATE_APP, input=app)["createApplication"]["id"]
        self.last_id = ""

    def deploy(self) -> tuple[float, dict[str, float]]:
        """Seconds from the mutation sent to DONE seen, and each step's seconds."""
        started = time.monotonic()
        dep_id = self.last_id = self.client(DEPLOY, id=self.app_id)["deployApplication"]["id"]
        sub = self.server.subscribe(STATUS_SUB, id=dep_id)
        try:
            status = None
            for data in sub.messages(timeout=180):
                status = data["deploymentStatus"]["status"]
                if status in TERMINAL:
                    break
            elapsed = time.monotonic() - started
        finally:
            sub.close()
        dep = self.client(DEPLOYMENT_STEPS, id=dep_id)["deployment"]
        assert status == dep["status"] == "DONE", dep["errorMessage"]
        wait_http_ok(self.port, timeout=5)
        return elapsed, {s["step"]: s["durationMs"] / 1000 for s in dep["steps"]}

    def verify_timeline(self) -> list[str]:
        """The last deployment's VERIFY_HEALTH lines, timed from the step's first line."""
        lines = self.client(DEPLOYMENT_LOG, id=self.last_id)["deployment"]["logs"]
        verify = [x for x in lines if x["step"] == "VERIFY_HEALTH"]
        if not verify:
            return []
        start = datetime.fromisoformat(verify[0]["timestamp"])
        return [
            f"+{(datetime.fromisoformat(x['timestamp']) - start).total_seconds():6.3f}s "
            f"{x['message'][:110]}"
            for x in verify
        ]


def _print_report(
    api: list[float],
    raw: list[float],
    api_steps: list[dict[str, float]],
    raw_phases: list[dict[str, float]],
    warmup: tuple[float, float],
    timeline: list[str],
) -> None:
    api_median, raw_median = median(api), median(raw)
    steps = {s: median([run.get(s, 0.0) for run in api_steps]) for s in STEPS}
    outside = median([total - sum(run.values()) for total, run in zip(api, api_steps, strict=True)])
    phases = {p: median([run[p] for run in raw_phases]) for p in raw_phases[0]}
    print(
        f"\nBENCH deploy_overhead: api_median={api_median:.3f}s raw_median={raw_median:.3f}s "
        f"ratio={api_median / raw_median:.3f} (target <= 1.15)\n"
        f"  api runs   {seconds(api)}\n"
        f"  raw runs   {seconds(raw)}\n"
        f"  warm-up    api={warmup[0]:.3f}s raw={warmup[1]:.3f}s (creates; not counted)\n"
        f"  api steps (median)   "
        + " ".join(f"{s}={v:.3f}s" for s, v in steps.items())
        + f" outside-steps={outside:.3f}s (queue, claim, finish, status delivery)\n"
        f"  raw phases (median)  " + " ".join(f"{p}={v:.3f}s" for p, v in phases.items())
    )
    print("  last API run, VERIFY_HEALTH log:\n    " + "\n    ".join(timeline))


def test_api_deploy_vs_raw_docker(tmp_path: Path, git_repo: Any, names: dict[str, str]) -> None:
    repo = git_repo("static-ok")
    (tmp_path / "raw").mkdir()
    raw = RawDeployer(repo=repo, work=tmp_path / "raw", service=names["raw"], port=free_port())
    with running_server(
        tmp_path / "data", real_adapters, endpoint_mode="dnsrr", health_timeout=60
    ) as server:
        api = ApiDeployer(server, repo, names["api"])
        warmup = (api.deploy()[0], sum(raw.deploy().values()))
        api_times: list[float] = []
        raw_times: list[float] = []
        api_steps: list[dict[str, float]] = []
        raw_phases: list[dict[str, float]] = []
        for _ in range(RUNS):
            elapsed, steps = api.deploy()
            api_times.append(elapsed)
            api_steps.append(steps)
            raw_phases.append(raw.deploy())
            raw_times.append(sum(raw_phases[-1].values()))
        timeline = api.verify_timeline()
    _print_report(api_times, raw_times, api_steps, raw_phases, warmup, timeline)
    assert all(list(s) == list(STEPS) for s in api_steps), api_steps
