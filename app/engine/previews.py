"""Preview deployments: one application derived from its parent per open pull request.

A preview is an ``applications`` row with ``parent_id`` and ``preview_number`` set. It
copies the parent's source and runtime settings, with its own Swarm service name, its
own published port (``previewPortBase`` + PR number) or domain label, ``previewEnv`` (on
top of the parent's env only where ``previewInheritEnv`` asks for it), and its own named
volumes. A pull request from another repository (a fork) runs code nobody here reviewed:
its preview gets ``previewEnv`` alone, no bind mounts, and none of the parent's git, ssh or
registry credentials, build arguments or build secrets (:data:`_WITHHELD_FROM_FORKS`).
Closing or merging the pull request marks it closed; :func:`sweep_closed` (run by every
watchdog that has a runtime) cancels what it still runs, removes its service, its rows and
log files, and the images nothing references any more.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.crypto import Cipher
from app.db.base import utcnow
from app.db.models import Application
from app.db.repos import applications, deployments
from app.db.session import Database
from app.engine.control import cancel_application
from app.engine.retention import prune_application, prune_images
from app.errors import SlipwayError
from app.ids import new_id
from app.logs.bus.base import Bus
from app.runtime.base import Runtime

log = logging.getLogger(__name__)

# Settings a preview takes from its parent as they are.
_COPIED = (
    "source_type",
    "repository",
    "repository_username",
    "repository_password_enc",
    "ssh_key_enc",
    "known_hosts",
    "submodules",
    "docker_image",
    "registry_username",
    "registry_password_enc",
    "registry_host",
    "build_type",
    "dockerfile",
    "context_path",
    "build_args",
    "build_args_enc",
    "build_arg_keys",
    "docker_build_stage",
    "build_secrets_enc",
    "build_secret_keys",
    "build_memory_limit",
    "build_cpu_limit",
    "clean_cache",
    "cpu_limit",
    "memory_limit",
    "health_check_command",
    "health_check_path",
    "health_timeout",
    "command",
    "server_id",
    "build_server_id",
    "deploy_timeout",
    "keep_deployments",
)
MAX_SERVICE_NAME = 63
# What a fork's preview never gets from its parent, whatever the parent's settings.
_WITHHELD_FROM_FORKS: dict[str, Any] = {
    "repository_username": None,
    "repository_password_enc": None,
    "ssh_key_enc": None,
    "registry_username": None,
    "registry_password_enc": None,
    "registry_host": None,
    "build_args": {},
    "build_args_enc": None,
    "build_arg_keys": [],
    "build_secrets_enc": None,
    "build_secret_keys": [],
}


def preview_app_name(parent_app_name: str, number: int) -> str:
    """``<parent>-pr-<n>``, cut so that it stays a valid 63-character service name."""
    suffix = f"-pr-{number}"
    return parent_app_name[: MAX_SERVICE_NAME - len(suffix)].rstrip("-") + suffix


def preview_host(parent_app_name: str, number: int, domain: str) -> str:
    return f"pr-{number}-{parent_app_name}.{domain}"


def open_preview(
    db: Database,
    cipher: Cipher,
    *,
    parent_id: str,
    number: int,
    head_ref: str | None,
    title: str | None,
    fork: bool = False,
) -> Application | None:
    """The open preview of pull request ``number``, created (or reopened) from the
    parent's current settings and named after ``title`` ("PR #7: Fix login"); None when
    the parent has previews off (or forks off, for a ``fork``'s) or its limit is reached."""
    with db.session(locking=True) as session:
        parent = applications.lock(session, parent_id)
        if not parent.preview_enabled or parent.parent_id is not None:
            return None
        if fork and not parent.preview_allow_forks:
            return None
        existing = session.scalars(
            select(Application).where(
                Application.parent_id == parent.id, Application.preview_number == number
            )
        ).first()
        reopening = existing is None or existing.preview_closed_at is not None
        if reopening and _open_count(session, parent.id) >= parent.preview_limit:
            log.info("preview of PR #%d of %s not made: limit reached", number, parent.app_name)
            return None
        columns = _derived(parent, number, head_ref, title, cipher, fork=fork)
        if existing is None:
            row = applications.create(session, id=new_id(), **columns)
        else:
            row = existing
            for column, value in columns.items():
                setattr(row, column, value)
            row.preview_closed_at = None
        session.flush()
        session.expunge(row)
        return row


def close_preview(db: Database, *, parent_id: str, number: int) -> str | None:
    """Mark the preview of pull request ``number`` closed; the sweep removes it."""
    with db.session(locking=True) as session:
        row = session.scalars(
            select(Application).where(
                Application.parent_id == parent_id, Application.preview_number == number
            )
        ).first()
        if row is None:
            return None
        if row.preview_closed_at is None:
            row.preview_closed_at = utcnow()
        return row.id


def sweep_closed(
    db: Database, runtime: Runtime | None, bus: Bus, *, work_dir: Path | None = None
) -> int:
    """Remove closed previews: cancel what they still run (removed on a later sweep, once
    it has stopped), then the service, rows, logs, workspace and unreferenced images.
    Without a runtime nothing is removed (a service must never outlive its row)."""
    if runtime is None:
        return 0
    with db.session() as session:
        closed = session.execute(
            select(Application.id, Application.app_name).where(
                Application.preview_closed_at.is_not(None)
            )
        ).all()
        if not closed:  # the usual case on every watchdog sweep: one small query, no more
            return 0
        busy = {d.application_id for d in deployments.active(session)}
    removed = 0
    for app_id, app_name in closed:
        if app_id in busy:
            cancel_application(db=db, bus=bus, application_id=app_id, who="the pull request close")
            continue
        try:
            runtime.remove(app_name)
            if not runtime.drained(app_name):
                continue  # its containers are stopping; their images go on a later sweep
        except SlipwayError as exc:
            log.warning("preview %s: service not removed yet (%s)", app_name, exc)
            continue
        prune_application(db, app_id, keep=0)
        with db.session(locking=True) as session:
            row = applications.get(session, app_id)
            if row is not None and row.preview_closed_at is not None:
                session.delete(row)
        if work_dir is not None:
            shutil.rmtree(work_dir / app_name, ignore_errors=True)
        removed += 1
        log.info("preview %s removed", app_name)
    if removed:
        prune_images(db, runtime)
    return removed


def _open_count(session: Any, parent_id: str) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Application)
        .where(Application.parent_id == parent_id, Application.preview_closed_at.is_(None))
    )
    return int(count or 0)


def _derived(
    parent: Application,
    number: int,
    head_ref: str | None,
    title: str | None,
    cipher: Cipher,
    *,
    fork: bool,
) -> dict[str, Any]:
    """The preview's columns: the parent's settings, made its own."""
    merged = _env(parent, cipher, fork=fork)
    app_name = preview_app_name(parent.app_name, number)
    columns: dict[str, Any] = {c: getattr(parent, c) for c in _COPIED}
    if fork:
        columns |= _WITHHELD_FROM_FORKS
    columns |= {
        "name": (f"{parent.name} · {title}" if title else f"{parent.name} PR #{number}")[:100],
        "app_name": app_name,
        "parent_id": parent.id,
        "preview_number": number,
        "preview_ref": head_ref,
        "branch": head_ref or parent.branch,
        "env_enc": cipher.encrypt_json(merged),
        "env_keys": sorted(merged),
        "ports": _ports(parent, number),
        "mounts": [
            _own_volume(m, number)
            for m in parent.mounts or []
            if not (fork and m.get("type") != "volume")  # a fork never sees the host
        ],
        "replicas": min(parent.replicas, 1),
        "preview_domain": (
            preview_host(parent.app_name, number, parent.preview_domain)
            if parent.preview_domain
            else None
        ),
        "preview_enabled": False,
        "auto_deploy": False,
        "status": "IDLE",
    }
    return columns


def _env(parent: Application, cipher: Cipher, *, fork: bool) -> dict[str, str]:
    """``previewEnv``, on top of the parent's env for a same-repository pull request whose
    parent asks for that (``previewInheritEnv``); a fork's preview never gets the parent's."""
    overrides = cipher.decrypt_json(parent.preview_env_enc, {})
    env = {} if fork or not parent.preview_inherit_env else cipher.decrypt_json(parent.env_enc, {})
    return {
        **(env if isinstance(env, dict) else {}),
        **(overrides if isinstance(overrides, dict) else {}),
    }


def _ports(parent: Application, number: int) -> list[dict[str, Any]]:
    """Only the first port is published, at ``previewPortBase + number``; without a base
    a preview publishes nothing (reach it by its domain label)."""
    if not parent.ports or parent.preview_port_base is None:
        return []
    published = parent.preview_port_base + number
    if published > 65535:
        published = parent.preview_port_base + number % (65536 - parent.preview_port_base)
    return [{**parent.ports[0], "published_port": published}]


def _own_volume(mount: dict[str, Any], number: int) -> dict[str, Any]:
    """A named volume gets a per-preview name so a preview never writes the parent's data."""
    if mount.get("type") != "volume":
        return dict(mount)
    return {**mount, "source": f"{mount['source']}-pr-{number}"[:255]}
