"""Making rows true again: a RUNNING row with no live worker, or past its time, is an ERROR."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from app.db.base import utcnow
from app.db.models import Deployment
from app.db.repos import applications, deployments
from app.db.session import Database
from app.engine.control import end_unattended
from app.logs.bus.base import Bus
from app.notify.dispatch import Notifier
from app.types import DeploymentStatus, NotificationEvent

log = logging.getLogger(__name__)


OVERDUE_GRACE = timedelta(seconds=60)  # past its limit, its own worker should have stopped it


def reap_dead(
    *,
    db: Database,
    bus: Bus,
    stale_after: float,
    default_timeout: float,
    notifier: Notifier | None = None,
) -> list[str]:
    """Mark deployments whose worker is gone as ERROR ("worker lost"), and ones their
    worker failed to stop at their time limit (each a DEPLOY_FAILED notification); returns
    their ids."""
    now = utcnow()
    with db.session() as session:
        stale = deployments.stale_running(session, older_than=timedelta(seconds=stale_after))
        running = deployments.running(session)
        limits = applications.deploy_timeouts(session, {d.application_id for d in running})
    dead: dict[str, tuple[Deployment, str]] = {}
    for dep in running:
        limit = timedelta(seconds=limits.get(dep.application_id) or default_timeout)
        if dep.started_at is not None and now - dep.started_at > limit + OVERDUE_GRACE:
            dead[dep.id] = (
                dep,
                f"timed out after {limit.total_seconds():g}s and its worker "
                f"({dep.worker}) did not stop it",
            )
    for dep in [*stale, *(d for d in running if _local_pid_gone(d))]:
        dead[dep.id] = (
            dep,
            f"worker lost: the worker running this deployment ({dep.worker}) stopped",
        )
    reaped = []
    for dep, reason in dead.values():
        if end_unattended(
            db=db,
            bus=bus,
            dep=dep,
            status=DeploymentStatus.ERROR,
            reason=reason,
            expect=(DeploymentStatus.RUNNING,),
        ):
            log.warning("deployment %s: %s", dep.id, reason)
            reaped.append(dep.id)
            if notifier is not None:
                notifier.emit(
                    NotificationEvent.DEPLOY_FAILED,
                    application_id=dep.application_id,
                    deployment_id=dep.id,
                )
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
