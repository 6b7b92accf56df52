"""Database.session translates what the database refuses into the error tree."""

from __future__ import annotations

import pytest

from app.db.migrate import upgrade
from app.db.models import Application
from app.db.session import Database
from app.errors import BadInput


@pytest.fixture
def db(database_url: str) -> Database:
    upgrade(database_url)
    return Database(database_url)


def test_a_value_the_database_cannot_take_is_bad_input_without_the_statement(
    db: Database,
) -> None:
    """NUL in an ID: PostgreSQL refuses it (found by the GraphQL fuzzer as an internal
    error with a traceback); SQLite stores it, so there the row is simply not found."""
    try:
        if not db.is_postgres:
            with db.session() as session:
                assert session.get(Application, "app\x00id") is None
            return
        with pytest.raises(BadInput) as err, db.session() as session:
            session.get(Application, "app\x00id")
        message = str(err.value)
        assert message == (
            "the database refused a value: PostgreSQL text fields cannot contain NUL (0x00) bytes"
        )
        assert "SELECT" not in message and "app" not in message
        with db.session() as session:  # the connection is usable after
            assert session.get(Application, "app-id") is None
    finally:
        db.dispose()


def test_sqlite_overwrites_what_it_deletes(tmp_path: object) -> None:
    """secure_delete: a secret replaced or deleted leaves no clear bytes in freed pages.

    Debian's SQLite is built with it on by default, so here this guards the outcome; the
    pragma makes it hold with any SQLite build."""
    from pathlib import Path

    from sqlalchemy import text

    path = Path(str(tmp_path)) / "s.db"
    db = Database(f"sqlite:///{path}")
    secret = "clear-secret-" + "x" * 2000
    try:
        with db.session() as session:
            assert session.execute(text("PRAGMA secure_delete")).scalar() == 1
            session.execute(text("CREATE TABLE t (v TEXT)"))
            session.execute(text("INSERT INTO t VALUES (:v)"), {"v": secret})
        with db.session() as session:
            session.execute(text("DELETE FROM t"))
        with db.session() as session:
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        db.dispose()
    leftovers = [p for p in path.parent.iterdir() if secret[:20].encode() in p.read_bytes()]
    assert leftovers == []
