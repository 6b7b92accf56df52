"""Making rows true again after a worker died: a RUNNING row with no live worker is an ERROR."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from pathlib import Path

from app.db.models import Deployment
from app.db.repos import deployments
from app.db.session import Database
from app.engine.events import announce
from app.logs.bus.base import Bus
from app.logs.writer import LogWriter
from app.types import DeploymentStatus

log = logging.getLogger(__name__)


def reap_dead(*, db: Database, bus: Bus, stale_after: float) -> list[str]:
    """Mark deployments whose worker is gone as ERROR; returns their ids."""
    with db.session() as session:
        stale = deployments.stale_running(session, older_than=timedelta(seconds=stale_after))
        running = deployments.active(session)
        dead = {d.id: d for d in stale}
        dead.update({d.id: d for d in running if d.status == "RUNNING" and _local_pid_gone(d)})
    reaped = []
    for dep in dead.values():
        reason = f"the worker running this deployment ({dep.worker}) stopped responding"
        _close_log(dep, bus, reason)
        with db.session() as session:
            row = deployments.get(session, dep.id)
            if row is None or row.status != DeploymentStatus.RUNNING.value:
                continue
            deployments.finish(
                session, deployment_id=dep.id, status=DeploymentStatus.ERROR, error=reason
            )
        announce(bus, deployment_id=dep.id, application_id=dep.application_id, status="ERROR")
        log.warning("deployment %s: %s", dep.id, reason)
        reaped.append(dep.id)
    return reaped


def _local_pid_gone(dep: Deployment) -> bool:
    """Same host and that process no longer exists (or is us after a restart)."""
    if not dep.worker or dep.pid is None:
        return False
    host, _, pid = dep.worker.rpartition(":")
    if host != socket.gethostname():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _close_log(dep: Deployment, bus: Bus, reason: str) -> None:
    writer = LogWriter(path=Path(dep.log_path), deployment_id=dep.id, bus=bus)
    writer.system(f"Deployment finished: ERROR: {reason}")
    writer.close()
