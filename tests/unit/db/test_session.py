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
