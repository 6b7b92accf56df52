"""Retention: the newest K finished deployments of an application are kept; older rows,
log files and the images they built are removed."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select

from app.db.models import Application
from app.db.repos import deployments, webhooks
from app.db.session import Database
from app.errors import SlipwayError
from app.runtime.base import Runtime

log = logging.getLogger(__name__)


def prune_application(db: Database, application_id: str, *, keep: int) -> int:
    """Remove the application's finished deployments beyond the newest ``keep``; returns
    how many. Running, queued and scheduled ones are never touched."""
    with db.session(locking=True) as session:
        doomed = deployments.prunable(session, application_id, keep=keep)
        ids = [d.id for d in doomed]
        paths = [Path(d.log_path) for d in doomed]
        deployments.delete(session, ids)
    for path in paths:  # after the commit: a failed commit leaves rows and files together
        path.unlink(missing_ok=True)
    return len(ids)


def prune_all(
    db: Database, runtime: Runtime | None, *, default_keep: int, webhook_days: float = 30.0
) -> int:
    """The periodic job: every application's surplus deployments, then orphaned images
    (and webhook delivery ids older than ``webhook_days``)."""
    with db.session() as session:
        webhooks.prune(session, older_than_days=webhook_days)
        apps = session.execute(select(Application.id, Application.keep_deployments)).all()
    removed = sum(prune_application(db, app_id, keep=keep or default_keep) for app_id, keep in apps)
    if runtime is not None:
        prune_images(db, runtime)
    if removed:
        log.info("retention removed %d old deployments", removed)
    return removed


def prune_images(db: Database, runtime: Runtime) -> list[str]:
    """Remove images built by deployments whose rows are gone (not ones in use)."""

    def existing(ids: list[str]) -> set[str]:
        with db.session() as session:
            return deployments.existing_ids(session, ids)

    try:
        return runtime.prune_images(existing)
    except SlipwayError as exc:
        log.warning("image retention skipped: %s", exc)
        return []
