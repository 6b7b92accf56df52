"""authenticate and the key repo: revoked and expired keys refused, use recorded once a
minute, the last ADMIN key kept, an unknown key cheap; on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import event

from app.auth.keys import authenticate
from app.db.base import utcnow
from app.db.migrate import upgrade
from app.db.models import ApiKey
from app.db.repos import api_keys
from app.db.session import Database
from app.errors import Conflict, NotFound, Unauthenticated
from app.types import Scope


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def _key(db: Database, *scopes: Scope, expires_in: timedelta | None = None) -> tuple[str, str]:
    expires = utcnow() + expires_in if expires_in is not None else None
    with db.session() as s:
        row, secret = api_keys.create(s, name="k", scopes=list(scopes), expires_at=expires)
    return row.id, secret


def test_revoked_key_is_refused_on_the_next_call(db: Database) -> None:
    _key(db, Scope.ADMIN)
    key_id, secret = _key(db, Scope.READ)
    assert authenticate(db, secret).scopes == {Scope.READ}
    with db.session() as s:
        assert api_keys.revoke(s, key_id) is True
    with pytest.raises(Unauthenticated):
        authenticate(db, secret)
    with db.session() as s:
        assert api_keys.revoke(s, key_id) is False  # already revoked
        with pytest.raises(NotFound):
            api_keys.revoke(s, "no-such-key")


def test_expired_key_is_refused(db: Database) -> None:
    key_id, secret = _key(db, Scope.READ, expires_in=timedelta(hours=1))
    assert authenticate(db, secret).key_id == key_id
    with db.session() as s:
        s.get_one(ApiKey, key_id).expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        authenticate(db, secret)


def test_last_usable_admin_key_is_kept(db: Database) -> None:
    first, _ = _key(db, Scope.ADMIN)
    second, _ = _key(db, Scope.READ, Scope.ADMIN)
    expired, _ = _key(db, Scope.ADMIN, expires_in=timedelta(hours=1))
    with db.session() as s:
        s.get_one(ApiKey, expired).expires_at = utcnow() - timedelta(seconds=1)
    with db.session(locking=True) as s:
        assert api_keys.revoke(s, first)
    with db.session(locking=True) as s, pytest.raises(Conflict):
        api_keys.revoke(s, second)  # the expired ADMIN key does not count
    with db.session(locking=True) as s:
        assert api_keys.revoke(s, second, keep_last_admin=False)  # the local CLI may


def test_use_is_written_at_most_once_a_minute(db: Database) -> None:
    key_id, secret = _key(db, Scope.READ)
    updates: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_: object) -> None:
        if "last_used_at IS NULL" in statement:  # authenticate's conditional UPDATE
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    for _ in range(20):
        authenticate(db, secret)
    assert len(updates) == 1
    with db.session() as s:
        first = s.get_one(ApiKey, key_id).last_used_at
        assert first is not None and utcnow() - first < timedelta(seconds=30)
        s.get_one(ApiKey, key_id).last_used_at = first - timedelta(minutes=2)
    authenticate(db, secret)
    assert len(updates) == 2
    with db.session() as s:
        last = s.get_one(ApiKey, key_id).last_used_at
        assert last is not None and last > first - timedelta(seconds=1)


def test_an_unknown_key_costs_one_indexed_lookup(db: Database) -> None:
    for _ in range(50):
        _key(db, Scope.READ)
    statements: list[str] = []
    event.listen(
        db.engine,
        "before_cursor_execute",
        lambda *a: statements.append(a[2]),  # noqa: ARG005
    )
    timings = []
    for i in range(50):
        started = time.perf_counter()
        with pytest.raises(Unauthenticated):
            authenticate(db, f"slw_guess-{i}")
        timings.append(time.perf_counter() - started)
    assert len(statements) == 50 and all("key_hash" in s for s in statements)
    # a fraction of a millisecond idle; the bound leaves room for a loaded 2-core machine
    assert statistics.median(timings) < 0.02, timings
    started = time.perf_counter()
    with pytest.raises(Unauthenticated):
        authenticate(db, "x" * 1_000_000)  # refused by length, before hashing or the database
    assert time.perf_counter() - started < 0.02 and len(statements) == 50
    if db.engine.dialect.name == "sqlite":  # PostgreSQL may scan a 50-row table instead
        with db.engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM api_keys WHERE key_hash = ?", ("x",)
            ).all()
        assert "USING INDEX" in str(plan), plan


def test_two_admins_revoking_each_other_at_once_keep_one(db: Database) -> None:
    ids = [_key(db, Scope.ADMIN)[0] for _ in range(2)]
    barrier = threading.Barrier(2)

    def revoke(key_id: str) -> str:
        barrier.wait()
        try:
            with db.session(locking=True) as s:
                api_keys.revoke(s, key_id)
                time.sleep(0.2)  # hold the transaction while the other one tries
            return "revoked"
        except Conflict:
            return "kept"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(revoke, ids))
    assert outcomes == ["kept", "revoked"]
    with db.session() as s:
        assert api_keys.usable_admin_count(s) == 1
