"""``clearBuildCache``: the application's next build runs without cache, and the images
its earlier builds created are removed where nothing else needs them
(``builders/cache.py``)."""

from __future__ import annotations

import logging

from docker.errors import DockerException
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.builders.cache import CacheLedger, ClearedCache, clear_cached_images
from app.db.repos import applications
from app.engine.context import Workspace
from app.errors import SlipwayError
from app.graphql.context import AppState

log = logging.getLogger(__name__)


def mark_cleared(session: Session, application_id: str) -> str:
    """Flag the application's next build as uncached; its appName."""
    row = applications.require(session, application_id)
    row.clean_cache_next = True
    session.flush()
    app_name: str = row.app_name
    return app_name


async def remove_cached_images(state: AppState, app_name: str) -> ClearedCache | None:
    """Remove now where this process has the engine (embedded mode); else, or while the
    engine is away, the worker does it when the application's next build starts."""
    engine = state.engine
    if engine is None:
        return None
    ledger = CacheLedger(Workspace(state.settings.work_dir / app_name).build_cache_ledger)
    try:
        return await run_in_threadpool(lambda: clear_cached_images(engine.client(), ledger))
    except (DockerException, OSError, SlipwayError) as exc:
        log.info("cached build images of %s are removed at its next build: %s", app_name, exc)
        return None
