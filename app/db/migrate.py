"""Schema management: Alembic owns the schema; ``upgrade`` brings a database to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.filemodes import private_file, sqlite_file

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every migration up to head (idempotent)."""
    if (path := sqlite_file(url)) is not None:
        private_file(path)  # created 0600 (its directory 0700) before Alembic opens it
    command.upgrade(alembic_config(url), "head")
