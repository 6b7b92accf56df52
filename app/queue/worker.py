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
from app.monitor.emit import Notifications, log_only
from app.monitor.watcher import EngineWatcher
from app.notify.deliver import Deliverer
from app.notify.dispatch import Notifier
from app.notify.transport import AppriseTransport
from app.queue.actors import QUEUE_NAME, DeploymentQueue
from app.queue.notifications import QUEUE_NAME as NOTIFY_QUEUE
from app.queue.notifications import (
    NotificationQueue,
    declare_notifications,
    prune_deliveries,
    resend_overdue,
)
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
    notifications: NotificationQueue | None = None  # resends deliveries whose message was lost
    notifier: Notifier | None = None  # DEPLOY_FAILED for the deployments it ends as lost

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
                notifier=self.notifier,
            )
            kick_queued(self.db, self.queue)
            if self.notifications is not None:
                resend_overdue(
                    self.db, self.notifications, claim_ttl_s=self.settings.notify_timeout * 3 + 60
                )
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
                prune_deliveries(self.db)
        except Unavailable as exc:  # the engine or database is away: said, not a traceback
            log.warning("watchdog sweep: %s", exc)
        except Exception:
            log.exception("watchdog sweep failed")


@dataclass
class Worker:
    """Dramatiq worker threads running the engine, others sending notifications (their own
    queue and threads: neither waits for the other), a watchdog, and the engine's watcher
    (when the engine is a real one and ``SLIPWAY_MONITOR`` is on)."""

    engine: Engine
    queue: DeploymentQueue
    threads: int
    # How often idle threads look for a stop: stopping waits up to about twice this. The
    # in-process queue of embedded mode wakes for free, so serve passes a short one.
    poll_ms: int = 1000
    notifications: NotificationQueue | None = None
    deliverer: Deliverer | None = None

    def __post_init__(self) -> None:
        self._worker = dramatiq.Worker(
            self.queue.broker,
            queues={QUEUE_NAME},
            worker_threads=self.threads,
            worker_timeout=self.poll_ms,
        )
        self._senders: dramatiq.Worker | None = None
        if self.notifications is not None and self.deliverer is not None:
            self._senders = dramatiq.Worker(
                self.notifications.broker,
                queues={NOTIFY_QUEUE},
                worker_threads=self.engine.settings.notify_threads,
                worker_timeout=self.poll_ms,
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
            notifications=self.notifications,
            notifier=self.engine.notifier,
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
                emitter=(
                    Notifications(self.engine.notifier)
                    if self.engine.notifier is not None
                    else log_only
                ),
            )

    def _run(self, deployment_id: str) -> None:
        if self.engine.run(deployment_id):
            kick_queued(self.engine.db, self.queue)

    def start(self) -> None:
        self.queue.bind(self._run)
        if self._senders is not None:
            assert self.notifications is not None and self.deliverer is not None
            self.notifications.bind(self.deliverer.deliver)
            self._senders.start()
        self.watchdog.start()
        if self.monitor is not None:
            self.monitor.start()
        self._worker.start()

    def stop(self) -> None:
        """Running deployments end ERROR ("the worker shut down"), none is left RUNNING;
        their notifications are queued before the senders stop (a message still waiting for
        its retry is sent by the next worker's watchdog)."""
        self.watchdog.stop()
        if self.monitor is not None:
            self.monitor.stop()
        self.engine.shutdown()
        self._worker.stop(timeout=30_000)
        if self._senders is not None:
            self._senders.stop(timeout=int(self.engine.settings.notify_timeout * 1000) + 5_000)


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
    broker = make_broker(settings)
    cipher = Cipher(load_or_create_key(settings))
    made = adapters(settings)
    notifications = declare_notifications(broker)
    engine = Engine(
        settings=settings,
        db=db,
        bus=bus,
        cipher=cipher,
        adapters=made,
        notifier=Notifier(db=db, cipher=cipher, settings=settings, queue=notifications),
    )
    worker = Worker(
        engine=engine,
        queue=declare(broker),
        threads=settings.worker_threads,
        notifications=notifications,
        deliverer=Deliverer(
            db=db, cipher=cipher, settings=settings, transport=made.notify or AppriseTransport()
        ),
    )
    listener = None
    if settings.worker_metrics_port is not None:  # before any work: a taken port stops here
        from app.metrics.endpoint import MetricsListener

        listener = MetricsListener(db=db, settings=settings, port=settings.worker_metrics_port)
        listener.start()
    worker.start()
    try:
        while not stop.wait(1.0):  # a timed wait: the main thread stays free for signals
            pass
    finally:
        if listener is not None:
            listener.stop()
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
