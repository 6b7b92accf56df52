"""A thread that keeps a RUNNING deployment's heartbeat fresh and notices cancellation."""

from __future__ import annotations

import logging
import threading

from app.db.repos import deployments
from app.db.session import Database
from app.types import CancelToken

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, *, db: Database, deployment_id: str, cancel: CancelToken, interval: float
    ) -> None:
        self._db = db
        self._id = deployment_id
        self._cancel = cancel
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{deployment_id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._db.session() as session:
                    wanted = deployments.heartbeat(session, self._id)
            except Exception:  # the next beat retries; a long outage makes it stale
                log.exception("heartbeat of deployment %s failed", self._id)
                continue
            if wanted:
                self._cancel.cancel("cancelled by request")
