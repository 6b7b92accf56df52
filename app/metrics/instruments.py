"""What Slipway counts: one call per event, from any layer (this module imports nothing of
the app), cheap enough for the log writer's path (a lock and an add).

The metric objects are made on first use, not at import: in multiprocess mode making one
opens its file. :func:`configure` chooses the mode first. With ``SLIPWAY_METRICS_DIR`` every
process (``serve``, ``worker``) writes its values to files there (prometheus-client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` reads them all, so a
worker's deployments show in the scrape of a ``serve`` sharing the directory. Processes
sharing it must be on one machine and in one PID namespace (the files are named by pid).
Without it each process counts in memory and ``/metrics`` shows that process only.

Exported (``slipway_`` prefix):

- ``deployments_finished_total{status,trigger}``: deployments that ended, by final status
- ``step_duration_seconds{step,outcome}``: a histogram of pipeline step durations
- ``log_lines_published_total``: log lines written (and published on the bus)
- ``subscribers{transport}``: GraphQL operations streaming now (websocket, sse, multipart):
  the subscriptions, and a query sent over a stream while it runs
- ``webhook_deliveries_total{provider,outcome}``: webhook requests by what they were answered
- ``bus_delivery_lag_seconds``: histogram, Redis bus: an entry's age when this process got it
- ``bus_lag_seconds{process}``: the same for the last delivery, per process (``host:pid``)

The database gauges (queue depth, running) are read at scrape time (``endpoint.py``).
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    values,
)
from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger(__name__)
T = TypeVar("T")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TRANSPORTS = ("websocket", "sse", "multipart")
# Steps last from milliseconds (fakes, a cached fetch) to many minutes (builds, pushes).
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WEBHOOK_OUTCOMES = frozenset(
    {"deployed", "skipped", "ignored", "pong", "closed", "duplicate", "unauthorized",
     "bad_request", "too_large", "unavailable", "unknown_provider", "not_found"}
)  # fmt: skip

# The in-memory registry of single-process mode (the exposition adds the database's).
LOCAL = CollectorRegistry(auto_describe=True)


class Instruments:
    """This process's metric objects (one set per process)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.finished = Counter(
            "slipway_deployments_finished_total",
            "Deployments that ended, by final status and trigger",
            ["status", "trigger"],
            registry=registry,
        )
        self.step_seconds = Histogram(
            "slipway_step_duration_seconds",
            "Pipeline step durations, by step and outcome",
            ["step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.log_lines = Counter(
            "slipway_log_lines_published",
            "Deployment log lines written and published on the bus",
            registry=registry,
        )
        self.subscribers = Gauge(
            "slipway_subscribers",
            "GraphQL operations streaming now, by transport: subscriptions (and, while it "
            "runs, a query or mutation sent over a WebSocket or an HTTP stream)",
            ["transport"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.webhooks = Counter(
            "slipway_webhook_deliveries_total",
            "Webhook requests, by provider and outcome",
            ["provider", "outcome"],
            registry=registry,
        )
        self.bus_lag = Histogram(
            "slipway_bus_delivery_lag_seconds",
            "Redis bus: age of an entry (since XADD) when this process delivered it",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.bus_lag_last = Gauge(
            "slipway_bus_lag_seconds",
            "Redis bus: age of the last delivered entry, per reading process",
            ["process"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        for transport in TRANSPORTS:  # shown as 0 before the first subscription
            self.subscribers.labels(transport)


_lock = threading.Lock()
_instruments: Instruments | None = None
_directory: Path | None = None


def configure(directory: Path | None) -> None:
    """Choose the mode before any metric exists: multiprocess files in ``directory``, or
    in memory (None). Removes the files of processes that no longer run. Calling it again
    with the same directory does nothing; with another one, once metrics exist, fails."""
    global _directory
    with _lock:
        if directory is not None:
            directory = directory.resolve()
        if directory == _directory:
            return
        if _instruments is not None:
            raise RuntimeError(
                "metrics are already being recorded; choose SLIPWAY_METRICS_DIR at start"
            )
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        removed = prune(directory)
        if removed:
            log.info("metrics: removed the files of %d processes that ended", removed)
        os.environ[MULTIPROC_ENV] = str(directory)
        # prometheus-client picks its value class from the variable when imported; no metric
        # exists yet (they are made on first use), so choosing again now is the same choice.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        _directory = directory


def directory() -> Path | None:
    """The multiprocess directory, or None (in memory)."""
    return _directory


def prune(path: Path) -> int:
    """Remove the value files of processes that no longer run; returns how many pids."""
    gone: set[int] = set()
    for name in glob.glob(str(path / "*.db")):
        pid = _pid_of(name)
        if pid is not None and not _alive(pid):
            gone.add(pid)
            Path(name).unlink(missing_ok=True)
    return len(gone)


def process_exiting() -> None:
    """This process's live gauges (subscribers, bus lag) leave the sums now."""
    if _directory is not None:
        mark_process_dead(os.getpid(), str(_directory))  # type: ignore[no-untyped-call]


def instruments() -> Instruments:
    """The process's metric objects, made on first use."""
    global _instruments
    found = _instruments
    if found is None:
        with _lock:
            if _instruments is None:
                disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created: as multiprocess
                _instruments = Instruments(LOCAL if _directory is None else None)
            found = _instruments
    return found


# --- the calls the rest of the app makes ---------------------------------------------------


def deployment_finished(status: str, trigger: str) -> None:
    instruments().finished.labels(status, trigger).inc()


def step_ended(step: str, outcome: str, seconds: float) -> None:
    instruments().step_seconds.labels(step, outcome).observe(max(seconds, 0.0))


def log_lines_published(count: int) -> None:
    instruments().log_lines.inc(count)


def webhook_delivered(provider: str, outcome: str) -> None:
    outcome = outcome if outcome in WEBHOOK_OUTCOMES else "other"
    instruments().webhooks.labels(provider, outcome).inc()


def bus_delivered(lag_seconds: float) -> None:
    """One delivery from the Redis bus whose oldest entry was ``lag_seconds`` old."""
    lag = max(lag_seconds, 0.0)  # the Redis host's clock may run a little ahead of ours
    found = instruments()
    found.bus_lag.observe(lag)
    found.bus_lag_last.labels(f"{socket.gethostname()}:{os.getpid()}").set(lag)


async def subscribed(results: AsyncGenerator[T, None], transport: str) -> AsyncGenerator[T, None]:
    """``results``, counted in ``slipway_subscribers{transport}`` while it streams."""
    gauge = instruments().subscribers.labels(transport)
    gauge.inc()
    try:
        async with aclosing(results):
            async for result in results:
                yield result
    finally:
        gauge.dec()


def _pid_of(filename: str) -> int | None:
    """``counter_123.db``, ``gauge_livesum_123.db`` → 123."""
    stem = Path(filename).stem
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
