"""The one way in for HTTP requests and WebSocket inits: throttle, then authenticate."""

from __future__ import annotations

from anyio import to_thread

from app.auth.keys import Principal, authenticate
from app.auth.throttle import AuthThrottle
from app.db.session import Database
from app.errors import Unauthenticated


async def admit(
    db: Database, throttle: AuthThrottle, *, key: str | None, address: str | None
) -> Principal | None:
    """The principal for ``key`` sent from ``address``, or None (no key, or refused: each
    refusal of a presented key counts against the address). Raises RateLimited, before
    any database work, while the address is slowed and the key is not a known good one."""
    if not key:
        return None
    throttle.check(address, key)
    try:
        principal = await to_thread.run_sync(authenticate, db, key)
    except Unauthenticated:
        throttle.forget(key)
        throttle.record_failure(address)
        return None
    throttle.record_success(key)
    return principal
