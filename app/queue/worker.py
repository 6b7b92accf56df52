"""A worker: the engine bound to the actor, Dramatiq worker threads, and the watchdog."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import dramatiq

from app.db.repos import deployments
from app.db.session import Database
from app.engine.recovery import reap_dead
from app.engine.runner import Engine
from app.queue.actors import DeploymentQueue

log = logging.getLogger(__name__)


def kick_queued(db: Database, queue: DeploymentQueue) -> None:
    """Send a message for the head of each application's queue: the claim decides."""
    with db.session() as session:
        ids = deployments.queued_heads(session)
    for dep_id in ids:
        queue.send(dep_id)


@dataclass
class Worker:
    engine: Engine
    queue: DeploymentQueue
    threads: int
    watchdog_interval: float = 10.0

    def __post_init__(self) -> None:
        self._worker = dramatiq.Worker(self.queue.broker, worker_threads=self.threads)
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="slipway-watchdog", daemon=True)

    def _run(self, deployment_id: str) -> None:
        if self.engine.run(deployment_id):
            kick_queued(self.engine.db, self.queue)

    def start(self) -> None:
        self.queue.bind(self._run)
        self._sweep()
        self._worker.start()
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        self._worker.stop(timeout=10_000)
        self._watchdog.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.watchdog_interval):
            self._sweep()

    def _sweep(self) -> None:
        try:
            reap_dead(
                db=self.engine.db, bus=self.engine.bus, stale_after=self.engine.settings.stale_after
            )
            kick_queued(self.engine.db, self.queue)
        except Exception:
            log.exception("watchdog sweep failed")
