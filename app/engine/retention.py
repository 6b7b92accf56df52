"""Retention: the newest K finished deployments of an application are kept; older rows,
log files, the images they built and their rollback points are removed.

A pruned deployment's rollback point goes with it: its image on the engine (removed by
reference, never forced, so an image a container still uses stays) and its tags in
registries (the manifest deleted by digest through the registry's HTTP API: the digest
PUSH_IMAGE released and the rollback registry's copy). An image or digest that a
deployment still kept refers to (a ROLLBACK releases its target's image again) stays,
and so does everything of the application's newest DONE deployment: what runs now.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import Cipher
from app.db.models import Application
from app.db.repos import deployments, registries, webhooks
from app.db.session import Database
from app.engine.snapshot import registry_target
from app.errors import SlipwayError
from app.registry.base import RegistryClient
from app.runtime.base import Runtime
from app.types import RegistryTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointRemover:
    """What removing rollback points needs; a missing part leaves that part in place (the
    engine's images are still swept by :func:`prune_images` in the process that has one)."""

    cipher: Cipher
    runtime: Runtime | None = None
    registry: RegistryClient | None = None


@dataclass(frozen=True)
class _Point:
    """The references a pruned row held: local images and (registry id, repo@digest)."""

    images: frozenset[str]
    pushed: frozenset[tuple[str, str]]


def prune_application(
    db: Database,
    application_id: str,
    *,
    keep: int,
    points: PointRemover | None = None,
    protect_running: bool = True,
) -> int:
    """Remove the application's finished deployments beyond the newest ``keep``; returns
    how many. Running, queued and scheduled ones are never touched; with ``keep`` >= 1 the
    newest DONE one neither (it is what runs), and with ``protect_running`` its image and
    registry tags stay even when its row goes (``keep=0``: clearDeployments)."""
    with db.session(locking=True) as session:
        running = deployments.latest_done(session, application_id)
        doomed = [
            d
            for d in deployments.prunable(session, application_id, keep=keep)
            if keep == 0 or running is None or d.id != running.id
        ]
        ids = [d.id for d in doomed]
        paths = [Path(d.log_path) for d in doomed]
        gone = _references(doomed)
        deployments.delete(session, ids)
        # a rollback only names its own application's images, so its rows are enough
        kept = _kept(session, application_id) if doomed else set()
        if protect_running and running is not None:
            now = _references([running])
            kept |= now.images | {ref for _, ref in now.pushed}
        targets: dict[str, RegistryTarget | None] = {}
        if points is not None:
            named = registries.by_ids(session, {r for r, _ in gone.pushed})
            targets = {rid: registry_target(row, points.cipher) for rid, row in named.items()}
    for path in paths:  # after the commit: a failed commit leaves rows and files together
        path.unlink(missing_ok=True)
    if points is not None:
        _remove_points(gone, kept, targets, points)
    return len(ids)


def _kept(session: Session, application_id: str | None = None) -> set[str]:
    """Every image and repo@digest a remaining deployment (of the application) names."""
    point = _references(deployments.with_references(session, application_id))
    return set(point.images) | {ref for _, ref in point.pushed}


def _references(rows: Sequence[Any]) -> _Point:
    """Of rows or rows' columns: image_ref, registry_id, rollback_image, rollback_registry_*."""
    images: set[str] = set()
    pushed: set[tuple[str, str]] = set()
    for row in rows:
        # every reference is tried on the engine (a pulled or pushed digest is a local
        # reference too); one another row still names, or a container uses, stays
        images.update(i for i in (row.rollback_image, row.image_ref) if i)
        if row.registry_id and row.image_ref and _in_registry(row.image_ref):
            pushed.add((row.registry_id, by_digest(row.image_ref)))
        if row.rollback_registry_id and row.rollback_registry_ref:
            pushed.add((row.rollback_registry_id, by_digest(row.rollback_registry_ref)))
    return _Point(frozenset(images), frozenset(pushed))


def _in_registry(ref: str) -> bool:
    return "@sha256:" in ref and not ref.startswith(("slipway/", "sha256:"))


def by_digest(ref: str) -> str:
    """``host/repo:tag@sha256:…`` -> ``host/repo@sha256:…`` (what a manifest delete names)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{name}@{digest}"


def _remove_points(
    gone: _Point,
    kept: set[str],
    targets: dict[str, RegistryTarget | None],
    points: PointRemover,
) -> None:
    if points.runtime is not None:
        for image in sorted(gone.images - kept):
            try:
                if points.runtime.remove_image(image):
                    log.info("retention removed image %s", image)
            except SlipwayError as exc:
                log.warning("retention kept image %s: %s", image, exc)
    if points.registry is None:
        return
    for registry_id, ref in sorted(gone.pushed):
        if ref in kept:
            continue
        target = targets.get(registry_id)
        if target is None:
            log.warning("retention: registry %s of %s is gone; tag left", registry_id, ref)
            continue
        repository, _, digest = ref.partition("@")
        try:
            deleted = points.registry.delete(target, repository=repository, digest=digest)
        except SlipwayError as exc:
            log.warning("retention could not delete %s: %s", ref, exc)
            continue
        log.info("retention %s %s", "deleted" if deleted else "found already gone", ref)


def prune_all(
    db: Database,
    runtime: Runtime | None,
    *,
    default_keep: int,
    webhook_days: float = 30.0,
    points: PointRemover | None = None,
) -> int:
    """The periodic job: every application's surplus deployments, then orphaned images
    (and webhook delivery ids older than ``webhook_days``)."""
    with db.session() as session:
        webhooks.prune(session, older_than_days=webhook_days)
        apps = session.execute(select(Application.id, Application.keep_deployments)).all()
    removed = sum(
        prune_application(db, app_id, keep=keep or default_keep, points=points)
        for app_id, keep in apps
    )
    if runtime is not None:
        prune_images(db, runtime)
    if removed:
        log.info("retention removed %d old deployments", removed)
    return removed


def prune_images(db: Database, runtime: Runtime) -> list[str]:
    """Remove images built by deployments whose rows are gone (not ones in use, nor ones a
    kept deployment's rollback point still names)."""

    def existing(ids: list[str]) -> set[str]:
        with db.session() as session:
            alive = deployments.existing_ids(session, ids)
            named = _kept(session)
        # a built image's tag ends with its deployment id: slipway/<app>:<id>
        return alive | {i for i in ids if any(ref.endswith(f":{i}") for ref in named)}

    try:
        return runtime.prune_images(existing)
    except SlipwayError as exc:
        log.warning("image retention skipped: %s", exc)
        return []
