"""Benchmark: what the issue-9 hardening costs an ordinary request.

p50 and p99 of ``deployments(first: 50)`` (the history page of test_history_query) over
real HTTP, on SQLite and on PostgreSQL, 2,000 rows. "after" is the server as it is built
(``build_schema()``: document bounds, aliases and tokens, depth and cost with the
variables' values, before execution). "before" is the same server, same process and
database, with its GraphQL view serving a schema built here with only the extensions it
had before the hardening (error masking, parser and validation caches). Rounds alternate
between the two (and which goes first), so drift and background work fall on both alike.
Checks in the view itself (the key admitted before the body is read, the body bound) are
on in both: they replaced the per-request authentication that was already there.

Before measuring, both arms answer the page identically, and a document of 200 aliases is
answered by "before" and refused by "after", so the swap is known to take effect.
Target: p50 under 10% more (printed with the figures; like the other benchmarks, only
correctness is asserted).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import strawberry
from starlette.routing import Route
from strawberry.extensions import ParserCache, ValidationCache

from app.graphql.errors import error_masking
from app.graphql.schema import Mutation, Query, Schema, Subscription
from app.graphql.sharing import SharingExecutionContext
from app.graphql.view import SlipwayGraphQL
from app.types import Scope
from tests.bench.stats import percentile
from tests.bench.test_history_query import HISTORY, _bulk_insert, _row
from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP
from tests.support.fake_worker import DEFAULT_SOURCE, fake_adapters

ROWS = 2_000
APPS = 10
ROUNDS = 20
PER_ROUND = 30  # requests per arm and round: 600 per arm
WARMUP = 30
TARGET = 1.10
ALIASES = "{ " + " ".join(f"a{n}: __typename" for n in range(200)) + " }"


def before_schema() -> strawberry.Schema:
    """The schema with the extensions it had before issue 9, for the baseline arm."""
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            error_masking,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
        execution_context_class=SharingExecutionContext,
    )


def _view(server: Server) -> SlipwayGraphQL:
    app = server.server.config.app
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, SlipwayGraphQL):
            return route.endpoint
    raise AssertionError("no GraphQL view among the app's routes")


def _seed(server: Server) -> Client:
    client = server.client(Scope.READ, Scope.DEPLOY)
    apps = [
        client(CREATE_APP, input=GIT_APP(name=f"sec-{n:02d}"))["createApplication"]
        for n in range(APPS)
    ]
    rnd = random.Random(9)
    start = datetime.now(UTC) - timedelta(minutes=ROWS + 1)
    rows = (
        _row(
            n,
            rnd.choice(apps),
            start + timedelta(minutes=n),
            "ERROR" if rnd.random() < 0.15 else "DONE",
            server.settings.data_dir,
        )
        for n in range(ROWS)
    )
    _bulk_insert(server.db.engine, rows)
    return client


def _page(client: Client) -> dict[str, Any]:
    page: dict[str, Any] = client(HISTORY, first=50)["deployments"]
    return page


def _timed(client: Client, times: int) -> list[float]:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        _page(client)
        took.append((time.perf_counter() - started) * 1000)
    return took


def _check_arms(client: Client, view: SlipwayGraphQL, arms: dict[str, Any]) -> None:
    """Both arms give the same page; only "after" refuses the alias flood."""
    pages, floods = {}, {}
    for name, schema in arms.items():
        view.schema = schema
        pages[name] = _page(client)
        floods[name] = client.raw(ALIASES)
    assert pages["before"] == pages["after"] and len(pages["after"]["edges"]) == 50
    assert not floods["before"].get("errors"), floods["before"]
    assert floods["after"].get("errors"), "the hardened schema must refuse 200 aliases"


def test_security_overhead_on_deployments_first_50(tmp_path: Path, database_url: str) -> None:
    adapters = fake_adapters(DEFAULT_SOURCE, 0.0)
    overrides = {"database_url": database_url, "keep_deployments": 10**9}
    with running_server(tmp_path / "data", lambda _: adapters, **overrides) as server:
        backend = server.db.engine.dialect.name
        client = _seed(server)
        view = _view(server)
        arms = {"before": before_schema(), "after": view.schema}
        _check_arms(client, view, arms)
        took: dict[str, list[float]] = {name: [] for name in arms}
        for schema in arms.values():
            view.schema = schema
            _timed(client, WARMUP)
        for n in range(ROUNDS):
            order = list(arms) if n % 2 == 0 else list(reversed(arms))
            for name in order:
                view.schema = arms[name]
                took[name] += _timed(client, PER_ROUND)
        view.schema = arms["after"]
    p50 = {name: percentile(values, 50) for name, values in took.items()}
    p99 = {name: percentile(values, 99) for name, values in took.items()}
    ratio50, ratio99 = p50["after"] / p50["before"], p99["after"] / p99["before"]
    print(
        f"\nBENCH security_overhead[{backend}]: deployments(first: 50), {ROWS} rows, "
        f"{ROUNDS} alternating rounds x {PER_ROUND} requests per arm"
    )
    for name, label in (("before", "pre-hardening extensions"), ("after", "build_schema()")):
        arm = f"{name} ({label})"
        print(f"  {arm:<33} p50={p50[name]:6.2f}ms p99={p99[name]:6.2f}ms")
    verdict = "met" if ratio50 < TARGET else "MISSED"
    print(
        f"  ratio after/before p50={ratio50:5.3f} p99={ratio99:5.3f} "
        f"({(p50['after'] - p50['before']) * 1000:+.0f} us at p50; target p50 < {TARGET:.2f}: "
        f"{verdict})"
    )
