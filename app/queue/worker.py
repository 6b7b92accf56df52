"""A worker: the engine bound to the actor, Dramatiq worker threads, the watchdog, and the
runtime monitor's watcher of the engine (``app/monitor``; one process at a time watches)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq

from app.db.repos import deployments
from app.db.session import Database
from app.engine.adapters import real_adapters
from app.engine.context import Adapters
from app.engine.previews import sweep_closed
from app.engine.recovery import reap_dead
from app.engine.retention import PointRemover, prune_all
from app.engine.runner import Engine
from app.errors import Unavailable
from app.logs.bus.base import Bus
from app.metrics import instruments as metrics
from app.monitor.watcher import EngineWatcher
from app.queue.actors import DeploymentQueue
from app.runtime.base import Runtime
from app.settings import Settings

log = logging.getLogger(__name__)


def kick_queued(db: Database, queue: DeploymentQueue) -> None:
    """Queue due scheduled deployments, then send a message for the head of each
    application's queue: the claim decides whether it may start."""
    with db.session() as session:
        deployments.promote_due(session)
        ids = deployments.queued_heads(session)
    for dep_id in ids:
        queue.send(dep_id)


@dataclass
class Watchdog:
    """Every ``interval``: reap dead or overdue deployments, start what may start, and now
    and then apply retention. Runs in every worker and every API server, so that rows stay
    true while any Slipway process is up (the sweeps are idempotent)."""

    db: Database
    bus: Bus
    queue: DeploymentQueue
    settings: Settings
    runtime: Runtime | None = None  # for image retention; None: rows and logs only
    # rollback points of pruned deployments: their images (with runtime) and registry tags
    points: PointRemover | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="slipway-watchdog", daemon=True)
        self._next_retention = time.monotonic()

    def start(self) -> None:
        self.sweep()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.watchdog_interval):
            self.sweep()

    def sweep(self) -> None:
        try:
            reap_dead(
                db=self.db,
                bus=self.bus,
                stale_after=self.settings.stale_after,
                default_timeout=self.settings.deploy_timeout,
            )
            kick_queued(self.db, self.queue)
            sweep_closed(self.db, self.runtime, self.bus, work_dir=self.settings.work_dir)
            if time.monotonic() >= self._next_retention:
                self._next_retention = time.monotonic() + self.settings.retention_interval
                prune_all(
                    self.db,
                    self.runtime,
                    default_keep=self.settings.keep_deployments,
                    webhook_days=self.settings.webhook_retention_days,
                    points=self.points,
                )
        except Unavailable as exc:  # the engine or database is away: said, not a traceback
            log.warning("watchdog sweep: %s", exc)
        except Exception:
            log.exception("watchdog sweep failed")


@dataclass
class Worker:
    """Dramatiq worker threads running the engine, a watchdog, and the engine's watcher
    (when the engine is a real one and ``SLIPWAY_MONITOR`` is on)."""

    engine: Engine
    queue: DeploymentQueue
    threads: int
    # How often idle threads look for a stop: stopping waits up to about twice this. The
    # in-process queue of embedded mode wakes for free, so serve passes a short one.
    poll_ms: int = 1000

    def __post_init__(self) -> None:
        self._worker = dramatiq.Worker(
            self.queue.broker, worker_threads=self.threads, worker_timeout=self.poll_ms
        )
        self.watchdog = Watchdog(
            db=self.engine.db,
            bus=self.engine.bus,
            queue=self.queue,
            settings=self.engine.settings,
            runtime=self.engine.adapters.runtime,
            points=PointRemover(
                cipher=self.engine.cipher,
                runtime=self.engine.adapters.runtime,
                registry=self.engine.adapters.registry,
            ),
        )
        connection = self.engine.adapters.engine
        self.monitor: EngineWatcher | None = None
        if connection is not None and self.engine.settings.monitor:
            self.monitor = EngineWatcher(
                engine_key="local",
                connection=connection,
                db=self.engine.db,
                bus=self.engine.bus,
                cipher=self.engine.cipher,
                settings=self.engine.settings,
            )

    def _run(self, deployment_id: str) -> None:
        if self.engine.run(deployment_id):
            kick_queued(self.engine.db, self.queue)

    def start(self) -> None:
        self.queue.bind(self._run)
        self.watchdog.start()
        if self.monitor is not None:
            self.monitor.start()
        self._worker.start()

    def stop(self) -> None:
        """Running deployments end ERROR ("the worker shut down"), none is left RUNNING."""
        self.watchdog.stop()
        if self.monitor is not None:
            self.monitor.stop()
        self.engine.shutdown()
        self._worker.stop(timeout=30_000)


def run_worker(
    settings: Settings,
    stop: threading.Event,
    adapters: Callable[[Settings], Adapters] = real_adapters,
) -> None:
    """`slipway worker`: run deployments from the Redis queue until ``stop`` is set."""
    from app.crypto import Cipher, load_or_create_key
    from app.db.session import Database
    from app.filemodes import secure_data_dir
    from app.logs.bus.factory import make_bus
    from app.queue.actors import declare
    from app.queue.broker import make_broker

    secure_data_dir(settings)  # a worker-only machine's data dir is as private as serve's
    metrics.configure(settings.metrics_dir)  # its counters in the directory serve reads
    db = Database(settings.effective_database_url, stall_timeout=settings.db_stall_timeout)
    bus = make_bus(settings)
    engine = Engine(
        settings=settings,
        db=db,
        bus=bus,
        cipher=Cipher(load_or_create_key(settings)),
        adapters=adapters(settings),
    )
    worker = Worker(
        engine=engine, queue=declare(make_broker(settings)), threads=settings.worker_threads
    )
    worker.start()
    try:
        while not stop.wait(1.0):  # a timed wait: the main thread stays free for signals
            pass
    finally:
        worker.stop()
        bus.close()  # the last status events and log ends must leave before we exit
        metrics.process_exiting()
        db.dispose()


def run_until_signalled(
    settings: Settings, adapters: Callable[[Settings], Adapters] = real_adapters
) -> None:
    """:func:`run_worker` until SIGINT or SIGTERM (`slipway worker`, and test workers)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_worker(settings, stop, adapters)
