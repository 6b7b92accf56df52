"""``GET /readyz``: can this process do its work now? One entry per dependency.

``/healthz`` says the process lives; ``/readyz`` checks what it depends on: the database
(``SELECT 1``), Redis (distributed mode: the broker and the bus), and the Docker engine
(embedded mode, where ``serve`` deploys; in distributed mode the workers talk to the
engines). HTTP 200 when every entry is up, 503 when one is down.

Each check has a short timeout and its answer is kept for ``SLIPWAY_READYZ_CACHE``
seconds; while one caller refreshes an answer, the others get the previous one. So a
caller without a key, however often it asks, costs at most one check per dependency
per period and otherwise a dictionary lookup.

What it reveals: without a valid API key, each entry's name and state, and for a down
one a fixed reason ("not reachable"); with any valid key, the reason as observed
(addresses and error classes; never credentials: URLs are never shown).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import text

from app.db.session import Database
from app.runtime.connection import EngineConnection, EngineStatus

CHECK_TIMEOUT_S = 2.0
PUBLIC_DOWN = "not reachable"


class CachedCheck:
    """Runs ``check`` at most once per ``cache_s``; concurrent callers get the last answer."""

    def __init__(self, check: Callable[[], EngineStatus], *, cache_s: float) -> None:
        self._check = check
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._last: EngineStatus | None = None
        self._at = 0.0

    def __call__(self) -> EngineStatus:
        if self._last is not None and time.monotonic() - self._at < self._cache_s:
            return self._last
        if not self._lock.acquire(blocking=self._last is None):
            assert self._last is not None
            return self._last
        try:
            self._last = self._check()
            self._at = time.monotonic()
            return self._last
        finally:
            self._lock.release()


def database_check(db: Database) -> Callable[[], EngineStatus]:
    def check() -> EngineStatus:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return EngineStatus(False, f"database: {exc.__class__.__name__}")
        return EngineStatus(True, "ok")

    return check


def redis_check(url: str) -> tuple[Callable[[], EngineStatus], Callable[[], None]]:
    """The check, and how to close its client."""
    client: Any = redis.Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S
    )

    def check() -> EngineStatus:
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            # redis-py's message names host and port, never the password.
            return EngineStatus(False, f"redis: {exc.__class__.__name__}: {exc}")
        return EngineStatus(True, "ok")

    return check, client.close


@dataclass
class Readiness:
    """The checks of one process, by dependency name."""

    checks: dict[str, Callable[[], EngineStatus]]
    closers: tuple[Callable[[], None], ...] = ()

    @classmethod
    def build(
        cls,
        *,
        db: Database,
        redis_url: str | None,
        engine: EngineConnection | None,
        cache_s: float,
    ) -> Readiness:
        checks: dict[str, Callable[[], EngineStatus]] = {
            "database": CachedCheck(database_check(db), cache_s=cache_s)
        }
        closers: list[Callable[[], None]] = []
        if redis_url:
            check, close = redis_check(redis_url)
            checks["redis"] = CachedCheck(check, cache_s=cache_s)
            closers.append(close)
        if engine is not None:
            checks["docker"] = engine.status  # cached by the connection itself
        return cls(checks=checks, closers=tuple(closers))

    def report(self, *, details: bool) -> tuple[bool, dict[str, Any]]:
        """(all up, the JSON body); ``details`` adds each reason as observed."""
        entries: dict[str, dict[str, str]] = {}
        for name, check in self.checks.items():
            status = check()
            reason = status.reason if details or status.up else PUBLIC_DOWN
            entries[name] = {"state": "up" if status.up else "down", "reason": reason}
        ready = all(e["state"] == "up" for e in entries.values())
        return ready, {"status": "ready" if ready else "unavailable", "checks": entries}

    def close(self) -> None:
        for close in self.closers:
            close()
