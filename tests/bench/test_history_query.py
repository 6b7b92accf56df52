"""Benchmark: ``deployments(first: 50)`` over 100,000 rows, on SQLite and on PostgreSQL.

20 applications are created through the API, then 100,000 deployment rows are inserted
with SQLAlchemy Core (time-ordered ids, as ``app.ids.new_id`` makes them; mostly DONE and
ERROR, the newest few RUNNING and QUEUED). Two of the applications are "archived": their
deployments are all among the oldest 5%. Each query shape is then sent 200 times over
real HTTP; the baseline, in the same run, is the same page fetched with one raw SQL
SELECT (joined to applications) through SQLAlchemy. The SQL statements of one request
are counted with a ``before_cursor_execute`` listener on the server's engine: their
number must not grow with the page size (first: 5, 50, 200), which is asserted. Latency
figures are printed, not asserted.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from app.db.models import Deployment
from app.graphql.context import AppState
from app.graphql.relay import decode_cursor
from app.sources.fake import FAKE_SHA
from app.types import Scope
from tests.bench.stats import percentile
from tests.e2e.conftest import GIT_APP
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP
from tests.support.fake_worker import DEFAULT_SOURCE, fake_adapters

ROWS = 100_000
APPS = 20
ARCHIVED = 2  # applications whose deployments are all among the oldest 5%
REPEAT = 200
CHUNK = 5_000
SIZES = (5, 50, 200)
HISTORY = """
query($first: Int, $app: ID, $after: String) {
  deployments(first: $first, applicationId: $app, after: $after) {
    edges { cursor node { id status title createdAt application { name appName }
      queuePosition } }
    pageInfo { hasNextPage endCursor } } }"""
RAW = """
SELECT d.id, d.status, d.title, d.created_at, a.name, a.app_name
FROM deployments d JOIN applications a ON a.id = d.application_id
WHERE {where} ORDER BY d.id DESC LIMIT :limit"""


def _row(n: int, app: dict[str, str], at: datetime, status: str, data: Path) -> dict[str, Any]:
    ms = int(at.timestamp() * 1000)
    dep_id = f"{ms:012x}{secrets.token_hex(6)}"
    ended = status in ("DONE", "ERROR")
    return {
        "id": dep_id,
        "application_id": app["id"],
        "title": f"Deployment {n}",
        "description": None,
        "status": status,
        "trigger": "MANUAL",
        "commit_sha": FAKE_SHA if status != "QUEUED" else None,
        "image_ref": f"slipway/{app['appName']}:{dep_id}" if status == "DONE" else None,
        "log_path": str(data / "logs" / app["appName"] / f"{dep_id}.log"),
        # RUNNING ones look alive and elsewhere, so the watchdog leaves them (and the
        # QUEUED ones behind them) as they are during the run.
        "pid": 1 if status == "RUNNING" else None,
        "worker": "bench-elsewhere:1" if status == "RUNNING" else None,
        "server_id": None,
        "build_server_id": None,
        "cancel_requested": False,
        "created_at": at,
        "started_at": _started(at, status),
        "finished_at": at + timedelta(seconds=30) if ended else None,
        "heartbeat_at": datetime.now(UTC) if status == "RUNNING" else None,
        "error_message": "build failed" if status == "ERROR" else None,
    }


def _started(at: datetime, status: str) -> datetime | None:
    if status == "QUEUED":
        return None
    return datetime.now(UTC) if status == "RUNNING" else at + timedelta(milliseconds=50)


def _rows(apps: list[dict[str, str]], data: Path) -> Iterator[dict[str, Any]]:
    """One row a minute, oldest first, ending now; the newest 15 are RUNNING/QUEUED."""
    rnd = random.Random(7)
    start = datetime.now(UTC) - timedelta(minutes=ROWS + 1)
    active, archived = apps[: APPS - ARCHIVED], apps[APPS - ARCHIVED :]
    tail = [(app, status) for app in active[:5] for status in ("RUNNING", "QUEUED", "QUEUED")]
    for n in range(ROWS - len(tail)):
        pool = archived + active if n < ROWS // 20 else active
        status = "ERROR" if rnd.random() < 0.15 else "DONE"
        yield _row(n, rnd.choice(pool), start + timedelta(minutes=n), status, data)
    for k, (app, status) in enumerate(tail):
        n = ROWS - len(tail) + k
        yield _row(n, app, start + timedelta(minutes=n), status, data)


def _bulk_insert(engine: Engine, rows: Iterator[dict[str, Any]]) -> None:
    table = Deployment.__table__
    with engine.begin() as conn:
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                conn.execute(insert(table), chunk)
                chunk = []
        if chunk:
            conn.execute(insert(table), chunk)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE deployments")  # what autovacuum does soon anyway


# --- measuring -------------------------------------------------------------------------


class StatementLog:
    """The SQL the server's engine runs while ``recording``, but for the worker's threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recording = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        thread = threading.current_thread()
        background = thread.name == "slipway-watchdog" or type(thread).__module__.startswith(
            "dramatiq"
        )
        if self.recording and not background:
            self.statements.append((statement, params))

    def during(self, fn: Callable[[], object]) -> list[tuple[str, Any]]:
        self.statements = []
        self.recording = True
        try:
            fn()
        finally:
            self.recording = False
        return self.statements

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@dataclass
class Shape:
    name: str
    app: str | None = None
    after: str | None = None

    def variables(self, first: int) -> dict[str, Any]:
        return {"first": first, "app": self.app, "after": self.after}

    def raw(self, first: int) -> tuple[str, dict[str, Any]]:
        where, params = ["1 = 1"], {"limit": first + 1}
        if self.app:
            where.append("d.application_id = :app")
            params["app"] = self.app
        if self.after:
            where.append("d.id < :after")
            params["after"] = decode_cursor(self.after)
        return RAW.format(where=" AND ".join(where)), params


def _page(client: Client, shape: Shape, first: int) -> dict[str, Any]:
    page: dict[str, Any] = client(HISTORY, **shape.variables(first))["deployments"]
    return page


def _timed(fn: Callable[[], object], times: int) -> list[float]:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        took.append((time.perf_counter() - started) * 1000)
    return took


def _raw_page(engine: Engine, shape: Shape, first: int) -> None:
    sql, params = shape.raw(first)
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    assert rows


def _explain(engine: Engine, statement: str, params: Any) -> list[str]:
    prefix = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).all()
    return [" | ".join(str(c) for c in row) for row in rows]


def _page_statement(statements: list[tuple[str, Any]]) -> tuple[str, Any]:
    return next(s for s in statements if "ORDER BY deployments.id DESC" in s[0])


# --- the benchmark ---------------------------------------------------------------------


def _setup(server: Server) -> tuple[Client, list[dict[str, str]]]:
    client = server.client(Scope.READ, Scope.DEPLOY)
    apps = [
        client(CREATE_APP, input=GIT_APP(name=f"hist-{n:02d}"))["createApplication"]
        for n in range(APPS)
    ]
    started = time.perf_counter()
    _bulk_insert(server.db.engine, _rows(apps, server.settings.data_dir))
    print(f"\n  inserted {ROWS} rows in {time.perf_counter() - started:.1f}s")
    return client, apps


def _shapes(client: Client, apps: list[dict[str, str]]) -> list[Shape]:
    first_page = _page(client, Shape("all"), 50)
    return [
        Shape("all"),
        Shape("applicationId (active app)", app=apps[0]["id"]),
        Shape("applicationId (archived app)", app=apps[-1]["id"]),
        Shape("after page 1", after=first_page["pageInfo"]["endCursor"]),
    ]


def _report_shape(server: Server, client: Client, shape: Shape, log: StatementLog) -> list[int]:
    page = _page(client, shape, 50)
    assert len(page["edges"]) == 50 and page["pageInfo"]["hasNextPage"], shape
    api = _timed(lambda: _page(client, shape, 50), REPEAT)
    raw = _timed(lambda: _raw_page(server.db.engine, shape, 50), REPEAT)
    # Per size, the least of three, in case a background sweep of the worker slipped in.
    logged = {
        first: min((log.during(partial(_page, client, shape, first)) for _ in range(3)), key=len)
        for first in SIZES
    }
    counts = [len(logged[first]) for first in SIZES]
    plans = _explain(server.db.engine, *_page_statement(logged[50]))
    api50, api99 = percentile(api, 50), percentile(api, 99)
    raw50, raw99 = percentile(raw, 50), percentile(raw, 99)
    print(
        f"  {shape.name:<30} api p50={api50:6.1f}ms p99={api99:6.1f}ms | "
        f"raw SQL p50={raw50:5.2f}ms p99={raw99:5.2f}ms | ratio p50={api50 / raw50:5.1f} "
        f"p99={api99 / raw99:5.1f} | statements first:5/50/200 = " + "/".join(map(str, counts))
    )
    print("      plan: " + "\n            ".join(plans))
    if shape.name == "all":
        print("      statements (first: 200): " + " ; ".join(_short(s) for s, _ in logged[200]))
    return counts


def _short(statement: str) -> str:
    return " ".join(statement.split())[:110]


def test_history_query_100k(tmp_path: Path, database_url: str | None) -> None:
    # No reaping of the inserted RUNNING rows, no retention of the history during the run.
    overrides: dict[str, Any] = {"worker_lost_after": 3600, "keep_deployments": 10**9}
    if database_url:
        overrides["database_url"] = database_url
    adapters = fake_adapters(DEFAULT_SOURCE, 0.0)
    with running_server(tmp_path / "data", lambda _: adapters, **overrides) as server:
        backend = server.db.engine.dialect.name
        print(f"\nBENCH history_query[{backend}]: deployments(first: 50), {ROWS} rows, {APPS} apps")
        client, apps = _setup(server)
        state: AppState = server.server.config.app.state.slipway
        log = StatementLog(state.db.engine)
        try:
            counts = {
                shape.name: _report_shape(server, client, shape, log)
                for shape in _shapes(client, apps)
            }
        finally:
            log.close()
        print("  (target p99 < 50ms; statement counts must not grow with the page size)")
    for name, per_size in counts.items():
        assert len(set(per_size)) == 1, f"{name}: statements per request grow: {per_size}"
