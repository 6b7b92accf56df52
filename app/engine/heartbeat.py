"""A thread that keeps a RUNNING deployment's heartbeat fresh and notices cancellation."""

from __future__ import annotations

import logging
import threading
import time

from app.db.repos import deployments
from app.db.session import Database
from app.types import CancelToken

log = logging.getLogger(__name__)
KILLED = "killed"  # a cancel reason starting so ends the deployment in ERROR


class Heartbeat:
    """Beats every ``interval``; stops the deployment when asked to, or after ``timeout``."""

    def __init__(
        self,
        *,
        db: Database,
        deployment_id: str,
        cancel: CancelToken,
        interval: float,
        timeout: float,
    ) -> None:
        self._db = db
        self._id = deployment_id
        self._cancel = cancel
        self._interval = interval
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
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
            if time.monotonic() >= self._deadline:
                self._cancel.cancel(
                    f"timed out: the deployment ran longer than its limit of {self._timeout:g}s",
                    fails=True,
                )
            try:
                with self._db.session() as session:
                    beat = deployments.heartbeat(session, self._id)
            except Exception:  # the next beat retries; a long outage makes it stale
                log.exception("heartbeat of deployment %s failed", self._id)
                continue
            if beat.stop is not None:
                self._cancel.cancel(
                    beat.stop, fails=beat.stop.startswith(KILLED), abandoned=beat.gone
                )
