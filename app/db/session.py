"""The database handle: one engine and session factory per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import BadInput, Unavailable
from app.filemodes import private_file, sqlite_file


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA secure_delete=ON")  # a secret replaced or deleted leaves no clear bytes
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """pysqlite defers BEGIN to the first write, which lets a read-then-write race; a
    ``locking`` session takes the write lock up front instead (BEGIN IMMEDIATE)."""
    if conn.get_execution_options().get("sqlite_immediate", False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_timeouts(stall_timeout: float) -> Any:
    """A transaction left idle (its process frozen or gone mid-claim) is ended by the
    server after ``stall_timeout``, so its row and advisory locks cannot block everyone."""
    ms = max(1, int(stall_timeout * 1000))

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET idle_in_transaction_session_timeout = {ms}")
        dbapi_conn.autocommit = autocommit

    return on_connect


def make_engine(url: str, *, stall_timeout: float | None = None) -> Engine:
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            private_file(path)  # 0600 before SQLite creates it; -wal/-shm inherit the mode
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if stall_timeout is not None:
        event.listen(engine, "connect", _postgres_timeouts(stall_timeout))
    return engine


class Database:
    """Owns the engine; ``with db.session() as s:`` commits on success, rolls back on error."""

    def __init__(self, url: str, *, stall_timeout: float | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, stall_timeout=stall_timeout)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._locking = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self, *, locking: bool = False) -> Iterator[Session]:
        """A transaction. ``locking`` ones serialise with each other from their first
        statement on SQLite; on PostgreSQL the repos take row and advisory locks."""
        factory = self._locking if locking else self._factory
        try:
            with factory() as session, session.begin():
                yield session
        except OperationalError as exc:
            raise Unavailable(f"database unavailable: {exc.orig.__class__.__name__}") from exc
        except DataError as exc:  # a value the database cannot take, such as NUL in an ID
            reason = str(exc.orig).strip().splitlines()[0]  # never the statement or parameters
            raise BadInput(f"the database refused a value: {reason}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
