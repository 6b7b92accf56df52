"""``GET /metrics``: the Prometheus text format, for a valid API key or the metrics token.

Who may scrape: any valid API key (READ is enough: counts and durations, no names, ids or
secrets), as ``x-api-key`` or ``Authorization: Bearer``, or ``SLIPWAY_METRICS_TOKEN`` as
the bearer token (Prometheus' ``authorization`` / ``bearer_token``), compared in constant
time without touching the database. A request without either is answered 401 before
anything is collected or read; a wrong key goes through the same failure throttle as the
API (``auth/gate.py``).

What a scrape reads: this process's metrics (or, in multiprocess mode, every process's
files in ``SLIPWAY_METRICS_DIR``) and, from the database, one ``GROUP BY status`` over the
deployments not yet finished (an index scan of ``ix_deployments_status``), kept for
``CACHE_S`` so a burst of scrapes costs one query. The database is the truth in
distributed mode, so every ``serve`` reports the same queue: sum the process metrics over
instances, not these.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth.gate import admit
from app.auth.keys import key_from_headers
from app.auth.throttle import AuthThrottle
from app.db.models import Deployment
from app.db.session import Database
from app.errors import RateLimited
from app.metrics import instruments
from app.settings import Settings
from app.types import DeploymentStatus, Scope

log = logging.getLogger(__name__)

CACHE_S = 1.0
# The classic text format every Prometheus (and Grafana Agent, VictoriaMetrics) reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPEN_STATES = (DeploymentStatus.SCHEDULED, DeploymentStatus.QUEUED, DeploymentStatus.RUNNING)
UNAUTHORIZED = "an API key (x-api-key or Authorization: Bearer) or the metrics token is required"


class QueueCollector(Collector):
    """``slipway_queue_depth{state}`` and ``slipway_deployments_running`` from the database,
    at most one query per ``cache_s``; ``slipway_database_up`` says whether it answered."""

    def __init__(self, db: Database, *, cache_s: float = CACHE_S) -> None:
        self._db = db
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._at = -cache_s
        self._counts: dict[str, int] | None = None
        self.queries = 0  # how many times the database was asked (tests read it)

    def counts(self) -> dict[str, int] | None:
        """Deployments per open state, or None when the database did not answer."""
        with self._lock:
            if time.monotonic() - self._at >= self._cache_s:
                self._counts = self._query()
                self._at = time.monotonic()
            return self._counts

    def _query(self) -> dict[str, int] | None:
        self.queries += 1
        states = [s.value for s in OPEN_STATES]
        try:
            with self._db.session() as session:
                rows = session.execute(
                    select(Deployment.status, func.count())
                    .where(Deployment.status.in_(states))
                    .group_by(Deployment.status)
                ).all()
        except Exception as exc:  # noqa: BLE001 - a scrape reports it, it does not fail
            log.warning("metrics: the database did not answer: %s", exc.__class__.__name__)
            return None
        return {str(status): int(count) for status, count in rows}

    def collect(self) -> Iterator[Metric]:
        counts = self.counts()
        yield GaugeMetricFamily(
            "slipway_database_up",
            "1 when the database answered this scrape's queue query",
            value=0 if counts is None else 1,
        )
        if counts is None:
            return
        depth = GaugeMetricFamily(
            "slipway_queue_depth", "Deployments not yet finished, by state", labels=["state"]
        )
        for state in OPEN_STATES:
            depth.add_metric([state.value], counts.get(state.value, 0))
        yield depth
        yield GaugeMetricFamily(
            "slipway_deployments_running",
            "Deployments RUNNING now (from the database: every worker's)",
            value=counts.get(DeploymentStatus.RUNNING.value, 0),
        )


class _Local(Collector):
    """This process's in-memory metrics (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        instruments.instruments()  # every family is shown, if only as 0
        yield from instruments.LOCAL.collect()


class MetricsEndpoint:
    """What one app serves at ``/metrics``."""

    def __init__(self, *, db: Database, token: str | None, cache_s: float = CACHE_S) -> None:
        self.queue = QueueCollector(db, cache_s=cache_s)
        self._token = token.encode() if token else None
        self.registry = CollectorRegistry(auto_describe=False)
        path = instruments.directory()
        if path is None:
            self.registry.register(_Local())
        else:
            instruments.instruments()  # this process's files exist from the first scrape
            MultiProcessCollector(self.registry, path=str(path))  # type: ignore[no-untyped-call]
        self.registry.register(self.queue)

    def is_token(self, presented: str) -> bool:
        return self._token is not None and hmac.compare_digest(presented.encode(), self._token)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_route(request: Request) -> Response:
    state = request.app.state.slipway
    endpoint: MetricsEndpoint = request.app.state.metrics
    presented = key_from_headers(request.headers)
    if not presented:  # nothing to check: refused before any work
        return _refused()
    if not endpoint.is_token(presented):
        address = request.client.host if request.client else None
        principal = await admit(state.db, state.throttle, key=presented, address=address)
        if principal is None or Scope.READ not in principal.scopes:
            return _refused()
    body = await run_in_threadpool(endpoint.render)
    return Response(body, headers={"content-type": CONTENT_TYPE})


def _refused() -> Response:
    return JSONResponse({"error": UNAUTHORIZED}, 401, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class _WorkerState:
    """What ``metrics_route`` reads from ``app.state.slipway`` (an ``AppState`` in serve)."""

    db: Database
    throttle: AuthThrottle


class MetricsListener:
    """``slipway worker``'s own ``GET /metrics`` on ``SLIPWAY_WORKER_METRICS_PORT``: the same
    route, keys and token as serve's, for a worker no serve shares a directory with."""

    def __init__(self, *, db: Database, settings: Settings, port: int) -> None:
        app = Starlette(
            routes=[Route("/metrics", metrics_route)],
            exception_handlers={RateLimited: _rate_limited},
        )
        app.state.slipway = _WorkerState(
            db=db,
            throttle=AuthThrottle(
                limit=settings.auth_failure_limit, window=settings.auth_failure_window
            ),
        )
        app.state.metrics = MetricsEndpoint(db=db, token=settings.metrics_token)
        config = uvicorn.Config(
            app, host=settings.worker_metrics_host, port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="metrics-http", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the worker's /metrics listener did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


async def _rate_limited(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    body = {"error": str(exc)}
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after)})
