"""Alembic owns the schema: head matches the models, and every step goes down and up again,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.db.base import Base
from app.db.migrate import alembic_config, upgrade
from app.db.models import Server  # noqa: F401 - registers every table on Base.metadata


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # idempotent
    assert _diff(database_url) == []


def test_every_migration_goes_down_and_up(database_url: str) -> None:
    config = alembic_config(database_url)
    upgrade(database_url)
    command.downgrade(config, "0001")
    assert "servers" not in _tables(database_url)
    command.downgrade(config, "base")
    assert _tables(database_url) <= {"alembic_version"}
    upgrade(database_url)
    assert {"applications", "deployments", "servers", "api_keys"} <= _tables(database_url)
    assert _diff(database_url) == []
