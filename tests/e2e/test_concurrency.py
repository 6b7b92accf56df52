"""Admission under load: 200 deployApplication requests for 20 applications, fired at once
through 3 `slipway serve` processes (one PostgreSQL schema, one Redis database), run by 2
fake worker processes on one build server that allows 2 builds at a time.

Checked on the rows afterwards: one RUNNING deployment per application at a time, in FIFO
order; at most 2 at once on the build server; every deployment DONE; a request equal to a
QUEUED one returned that one (counted and printed)."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Client, free_port
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.processes import (
    Proc,
    create_api_key,
    slipway_env,
    start_serve,
    start_worker,
    wait_healthy,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

APPS = 20
REQUESTS = 200
API_PROCESSES = 3
THREADS_PER_API = 6
WORKERS = 2
LIMIT = 2
REDIS_DB = 11  # a database of its own: a worker of another test must not take our messages

CREATE_SERVER = """
mutation($name: String!, $limit: Int!) {
  createServer(name: $name, maxConcurrentBuilds: $limit) { id maxConcurrentBuilds } }"""

ACTIVE = """
query { deployments(status: [QUEUED, SCHEDULED, RUNNING], first: 200) {
  edges { node { id status } } } }"""

ALL = """
query($after: String) { deployments(first: 200, after: $after) {
  edges { node { id applicationId buildServerId status trigger errorMessage
    createdAt startedAt finishedAt } }
  pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(url) as r:
        r.flushdb()
    yield url
    with redis.Redis.from_url(url) as r:
        r.flushdb()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop(timeout=20)


def _fire(apis: list[Client], app_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every request at once: THREADS_PER_API threads per API process, released together."""
    jobs: list[list[str]] = [[] for _ in range(API_PROCESSES * THREADS_PER_API)]
    for n in range(REQUESTS):
        jobs[n % len(jobs)].append(app_ids[n % APPS])
    start = threading.Barrier(len(jobs))

    def run(thread: int) -> list[tuple[str, dict[str, Any]]]:
        api = apis[thread % API_PROCESSES]
        client = Client(api.url, api.key)  # a connection of this thread's own
        start.wait(timeout=30)
        try:
            return [(app_id, client.raw(DEPLOY, id=app_id)) for app_id in jobs[thread]]
        finally:
            client.http.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, range(len(jobs))))
    return [pair for chunk in results for pair in chunk]


def _wait_idle(client: Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while edges := client(ACTIVE)["deployments"]["edges"]:
        states = Counter(edge["node"]["status"] for edge in edges)
        assert time.monotonic() < deadline, f"still active after {timeout}s: {dict(states)}"
        time.sleep(0.25)


def _all_deployments(client: Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        page = client(ALL, after=after)["deployments"]
        rows.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return rows
        after = page["pageInfo"]["endCursor"]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _max_overlap(rows: list[dict[str, Any]]) -> int:
    """Most RUNNING at one instant; an end sorts before a start at the same instant."""
    edges = [(_at(r["startedAt"]), 1) for r in rows] + [(_at(r["finishedAt"]), -1) for r in rows]
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    return peak


def test_200_concurrent_requests_respect_app_fifo_and_the_build_server_limit(
    tmp_path: Path, pg_schema_url: str, redis_db: str, procs: list[Proc]
) -> None:
    env = slipway_env(
        data_dir=tmp_path / "data",
        database_url=pg_schema_url,
        redis_url=redis_db,
        watchdog_interval="1",
        heartbeat_interval="0.5",
    )
    key = create_api_key(env)  # migrates the schema once, before the servers race to
    ports = [free_port() for _ in range(API_PROCESSES)]
    for n, port in enumerate(ports):
        procs.append(start_serve(env, tmp_path / f"serve-{n}.log", port=port, wait=False))
    for n in range(WORKERS):
        procs.append(start_worker(env, tmp_path / f"worker-{n}.log", lines=3, step_seconds=0.3))
    for proc, port in zip(procs, ports, strict=False):
        wait_healthy(proc, port)
    apis = [Client(f"http://127.0.0.1:{port}/graphql", key) for port in ports]
    admin = apis[0]

    server = admin(CREATE_SERVER, name="builds", limit=LIMIT)["createServer"]
    assert server["maxConcurrentBuilds"] == LIMIT
    app_ids = [
        admin(CREATE_APP, input=GIT_APP(name=f"app-{n}", buildServerId=server["id"]))[
            "createApplication"
        ]["id"]
        for n in range(APPS)
    ]

    began = time.monotonic()
    responses = _fire(apis, app_ids)
    fired = time.monotonic() - began
    errors = [body for _, body in responses if body.get("errors")]
    assert not errors, errors[:3]
    returned = [(app_id, body["data"]["deployApplication"]["id"]) for app_id, body in responses]
    _wait_idle(admin)
    settled = time.monotonic() - began

    rows = _all_deployments(admin)
    by_id = {row["id"]: row for row in rows}
    assert len(returned) == REQUESTS
    assert {dep_id for _, dep_id in returned} == set(by_id), "a request and a row that differ"
    for app_id, dep_id in returned:
        assert by_id[dep_id]["applicationId"] == app_id
    not_done = [r for r in rows if r["status"] != "DONE"]
    assert not not_done, not_done[:5]
    assert all(r["buildServerId"] == server["id"] for r in rows)

    per_app: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        per_app[row["applicationId"]].append(row)
    for app_id, deps in per_app.items():
        deps.sort(key=lambda r: r["id"])  # ids sort by creation
        for before, after in zip(deps, deps[1:], strict=False):
            # FIFO, one at a time: the next starts after the previous one finished ...
            assert _at(after["startedAt"]) >= _at(before["finishedAt"]), (app_id, before, after)
            # ... and was created only once the previous had started (dedup otherwise)
            assert _at(after["createdAt"]) >= _at(before["startedAt"]), (app_id, before, after)
    peak = _max_overlap(rows)
    assert peak <= LIMIT, f"{peak} deployments ran at once on a build server allowing {LIMIT}"

    distinct = len(by_id)
    print(
        f"\nconcurrency: {REQUESTS} requests -> {distinct} deployments, "
        f"{REQUESTS - distinct} deduplicated; {len(per_app)} applications, "
        f"up to {max(len(d) for d in per_app.values())} deployments each; "
        f"peak {peak} running at once (limit {LIMIT}); "
        f"requests took {fired:.1f}s, all ended after {settled:.1f}s"
    )
