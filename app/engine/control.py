"""Stopping deployments from outside the worker running them: cancel, kill, reap.

A RUNNING deployment is stopped by its own worker, which notices the request at its next
heartbeat and is the only writer of its log. Rows nobody runs (QUEUED, SCHEDULED, or a
worker that is gone) are ended here, with a last log line saying why.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from pathlib import Path

from app.db.models import Deployment
from app.db.repos import deployments
from app.db.session import Database
from app.engine.events import announce
from app.engine.heartbeat import KILLED
from app.errors import Conflict
from app.logs.bus.base import Bus
from app.logs.writer import LogWriter
from app.types import DeploymentStatus

log = logging.getLogger(__name__)
WAITING = (DeploymentStatus.QUEUED, DeploymentStatus.SCHEDULED)


def end_unattended(
    *,
    db: Database,
    bus: Bus,
    dep: Deployment,
    status: DeploymentStatus,
    reason: str,
    expect: tuple[DeploymentStatus, ...],
) -> bool:
    """Finish a deployment no worker is running; False if it had already moved on."""
    with db.session(locking=True) as session:
        row = deployments.finish(
            session, deployment_id=dep.id, status=status, error=reason, expect=expect
        )
    if row is None:
        return False
    _close_log(bus, dep, status, reason)
    return True


def _close_log(bus: Bus, dep: Deployment, status: DeploymentStatus, reason: str) -> None:
    writer = LogWriter(path=Path(dep.log_path), deployment_id=dep.id, bus=bus)
    writer.system(f"Deployment finished: {status.value}: {reason}")
    writer.close()
    announce(bus, deployment_id=dep.id, application_id=dep.application_id, status=status.value)


def cancel_application(
    *, db: Database, bus: Bus, application_id: str, who: str
) -> Deployment | None:
    """Cancel the application's queued and scheduled deployments at once, and ask its
    running one to stop. Returns the running one (now stopping), else the newest cancelled.

    One locked transaction decides all of it, so a deployment is either claimed by a
    worker first (and then stopped by it) or cancelled before it can start.
    """
    reason = f"cancelled by {who}"
    cancelled: list[Deployment] = []
    running: Deployment | None = None
    with db.session(locking=True) as session:
        for dep in deployments.cancellable(session, application_id):
            if dep.status == DeploymentStatus.RUNNING.value:
                deployments.request_cancel(session, dep, reason)
                running = dep
            elif deployments.finish(
                session,
                deployment_id=dep.id,
                status=DeploymentStatus.CANCELLED,
                error=reason,
                expect=WAITING,
            ):
                cancelled.append(dep)
    for dep in cancelled:  # nobody else writes these logs: they never started
        _close_log(bus, dep, DeploymentStatus.CANCELLED, reason)
    if running is not None:
        log.info("deployment %s: %s (stopping)", running.id, reason)
        return running
    return cancelled[-1] if cancelled else None


def kill(*, db: Database, bus: Bus, deployment_id: str, who: str, grace: float) -> Deployment:
    """Stop a RUNNING deployment hard and mark it ERROR.

    Its worker SIGKILLs the deployment's child processes and aborts its build at the next
    heartbeat. A worker that has not done so within ``grace`` seconds is itself killed by
    its recorded pid when it runs on this host (its other deployments are then reaped as
    "worker lost"), and the row is ended here.
    """
    reason = f"{KILLED} by {who}"
    with db.session(locking=True) as session:
        dep = deployments.require(session, deployment_id)
        if dep.status != DeploymentStatus.RUNNING.value:
            raise Conflict(
                f"deployment {deployment_id} is {dep.status}, not RUNNING: there is no process "
                "to kill" + ("; use cancelDeployment" if dep.status in WAITING else "")
            )
        deployments.request_cancel(session, dep, reason)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with db.session() as session:
            row = deployments.require(session, deployment_id)
            if row.status != DeploymentStatus.RUNNING.value:
                return row
        time.sleep(0.2)
    note = _kill_local_worker(dep)
    end_unattended(
        db=db,
        bus=bus,
        dep=dep,
        status=DeploymentStatus.ERROR,
        reason=f"{reason}; {note}",
        expect=(DeploymentStatus.RUNNING,),
    )
    with db.session() as session:
        return deployments.require(session, deployment_id)


def _kill_local_worker(dep: Deployment) -> str:
    host, _, pid_text = (dep.worker or "").rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return f"its worker ({dep.worker}) did not respond"
    pid = int(pid_text)
    if pid == os.getpid():
        return "its worker thread in this process did not respond"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return f"its worker process {pid} was already gone"
    except PermissionError:
        return f"its worker process {pid} could not be killed (permission)"
    log.warning("killed worker process %d that did not stop deployment %s", pid, dep.id)
    return f"its worker process {pid} did not respond and was killed"
