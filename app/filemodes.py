"""Owner-only modes for Slipway's state on disk: the data dir and its directories 0700, the
SQLite files (with -wal, -shm, -journal) and secret.key 0600.

Set where each is created and tightened again at every start, so a data dir made by an older
version (or by a loose umask) is fixed. Modes are only ever narrowed, never widened.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from app.settings import Settings

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700, or narrow an existing one to 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    narrow(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create ``path`` empty with 0600 when missing (its parent 0700 when missing), or narrow
    an existing one. SQLite gives its -wal and -shm files the database file's mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        narrow(path, PRIVATE_FILE)


def narrow(path: Path, mode: int) -> None:
    """Remove every permission bit of ``path`` beyond ``mode``; a failure is logged only."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
    except FileNotFoundError:
        return
    except PermissionError as exc:
        log.warning("cannot narrow the mode of %s to %o: %s", path, mode, exc)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def secure_data_dir(settings: Settings) -> None:
    """At start: the data dir and its logs and work dirs 0700; the database files and
    secret.key 0600 (where they exist; the database file is created 0600 if missing)."""
    private_dir(settings.data_dir)
    private_dir(settings.logs_dir)
    narrow(settings.work_dir, PRIVATE_DIR)
    narrow(settings.data_dir / "secret.key", PRIVATE_FILE)
    database = sqlite_file(settings.effective_database_url)
    if database is not None:
        private_file(database)
        for suffix in SQLITE_SIDE_FILES:
            narrow(database.with_name(database.name + suffix), PRIVATE_FILE)
