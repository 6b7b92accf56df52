"""Benchmark: rollbackDeployment -> DONE against a raw ``docker service update --image <old>``
of the same service, in the same run.

One application (two versions of a tiny busybox httpd app whose ``/`` answers ``version
one`` or ``version two``) is deployed twice through the API, so both images exist and the
Swarm service is Slipway's. Then, alternately on that same service:

* **api**: from sending ``rollbackDeployment(deploymentId: v1)`` (or v2) until
  ``deploymentStatus`` says DONE (ROLLBACK_POINT, RELEASE of the snapshot, VERIFY_HEALTH:
  converged, tasks running and steady, the port answering), then until ``GET /`` answers
  that version's content;
* **raw**: from starting ``/usr/bin/docker service update --image slipway/<app>:<id>
  --no-resolve-image <service>`` (the CLI waits until Swarm reports the update converged;
  ``--no-resolve-image`` because no registry holds these local images, and Slipway does
  not resolve them either) until ``GET /`` answers that version's content.

Each run switches the image (v2 -> v1 by the API, then v1 -> v2 raw), so both sides
replace the task every time, with the same update config (stop-first: host-mode port).
The app runs under a shell that exits on SIGTERM, so no side waits out a stop timeout.
Medians and their ratio are printed (target <= 1.15); only correctness is asserted.
Run alone: ``scripts/bench tests/bench/test_rollback.py``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.types import Scope
from tests.bench.raw_docker import HTTPD, docker
from tests.bench.stats import median, seconds
from tests.e2e.conftest import TERMINAL, wait_finished
from tests.e2e.harness import Client, Server, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY, STATUS_SUB
from tests.support.versions import VersionedRepo

pytestmark = pytest.mark.docker

RUNS = 7
ROLLBACK = "mutation($id: ID!) { rollbackDeployment(deploymentId: $id) { id } }"
STEPS = """
query($id: ID!) { deployment(id: $id) { status errorMessage steps { step durationMs } } }"""


def wait_content(port: int, expected: str, *, timeout: float = 60) -> None:
    """Poll ``GET /`` every 50 ms until it answers ``expected``."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as res:
                if res.read().decode() == expected:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer {expected!r} within {timeout:g}s")
        time.sleep(0.05)


@pytest.fixture
def name(docker_client: Any) -> Iterator[str]:
    made = f"bench-rollback-{uuid.uuid4().hex[:8]}"
    yield made
    for service in docker_client.services.list(filters={"name": made}):
        service.remove()
    deadline = time.monotonic() + 30
    label = f"com.docker.swarm.service.name={made}"
    while docker_client.containers.list(all=True, filters={"label": label}):
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for image in docker_client.images.list(name=f"slipway/{made}"):
        docker_client.images.remove(image.id, force=True)


class Api:
    def __init__(self, server: Server, client: Client) -> None:
        self.server = server
        self.client = client

    def rollback(self, target: str, port: int, content: str) -> tuple[float, dict[str, float]]:
        started = time.monotonic()
        dep_id = self.client(ROLLBACK, id=target)["rollbackDeployment"]["id"]
        sub = self.server.subscribe(STATUS_SUB, id=dep_id)
        try:
            status = None
            for data in sub.messages(timeout=120):
                status = data["deploymentStatus"]["status"]
                if status in TERMINAL:
                    break
        finally:
            sub.close()
        wait_content(port, content)
        elapsed = time.monotonic() - started
        dep = self.client(STEPS, id=dep_id)["deployment"]
        assert status == dep["status"] == "DONE", dep["errorMessage"]
        return elapsed, {s["step"]: s["durationMs"] / 1000 for s in dep["steps"]}


def raw_update(service: str, image: str, port: int, content: str) -> float:
    started = time.monotonic()
    docker("service", "update", "--quiet", "--no-resolve-image", "--image", image, service)
    wait_content(port, content)
    return time.monotonic() - started


def test_rollback_vs_raw_service_update(tmp_path: Path, name: str) -> None:
    repo = VersionedRepo(tmp_path)
    port = free_port()
    with running_server(
        tmp_path / "data", real_adapters, endpoint_mode="dnsrr", health_timeout=60
    ) as server:
        client = server.client(Scope.DEPLOY)
        app = server.client(Scope.ADMIN)(
            CREATE_APP,
            input={
                "name": name,
                "appName": name,
                "sourceType": "GIT",
                "repository": f"file://{repo.bare}",
                "branch": "main",
                "ports": [{"publishedPort": port, "targetPort": 8080, "publishMode": "HOST"}],
                "command": list(HTTPD),
            },
        )["createApplication"]
        versions: list[tuple[str, str]] = []  # (deployment id, content)
        for content in ("version one", "version two"):
            repo.commit(content)
            dep = wait_finished(
                client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180
            )
            assert dep["status"] == "DONE", dep["errorMessage"]
            versions.append((dep["id"], f"{content}\n"))
        wait_content(port, versions[1][1])
        api = Api(server, client)
        (v1, one), (v2, two) = versions
        image = {v1: f"slipway/{name}:{v1}", v2: f"slipway/{name}:{v2}"}
        # warm-up, not counted: one of each
        api.rollback(v1, port, one)
        raw_update(name, image[v2], port, two)
        api_times: list[float] = []
        raw_times: list[float] = []
        steps: list[dict[str, float]] = []
        for _ in range(RUNS):
            # v2 runs: the API rolls back to v1, then raw updates the image back to v2
            elapsed, step_times = api.rollback(v1, port, one)
            api_times.append(elapsed)
            steps.append(step_times)
            raw_times.append(raw_update(name, image[v2], port, two))
    api_median, raw_median = median(api_times), median(raw_times)
    step_names = ("ROLLBACK_POINT", "RELEASE", "VERIFY_HEALTH")
    step_medians = {s: median([run.get(s, 0.0) for run in steps]) for s in step_names}
    outside = median([t - sum(r.values()) for t, r in zip(api_times, steps, strict=True)])
    print(
        f"\nBENCH rollback: api_median={api_median:.3f}s raw_median={raw_median:.3f}s "
        f"ratio={api_median / raw_median:.3f} (target <= 1.15)\n"
        f"  api runs (rollbackDeployment -> DONE -> content)  {seconds(api_times)}\n"
        f"  raw runs (docker service update --image -> content) {seconds(raw_times)}\n"
        f"  api steps (median) "
        + " ".join(f"{s}={v:.3f}s" for s, v in step_medians.items())
        + f" outside-steps={outside:.3f}s (queue, claim, finish, status delivery, GET)"
    )
    assert all(list(s) == list(step_names) for s in steps), steps
