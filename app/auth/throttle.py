"""Slowing repeated failed authentication from one address, in bounded memory.

After ``limit`` presented keys that were refused (unknown, revoked, expired) from one
address within ``window`` seconds, that address gets 429 with Retry-After until the window
ends, without a database lookup. A key that has authenticated recently (its digest is in a
small cache) still goes through the ordinary check, so a valid client behind the same
address keeps working while guesses are refused. Requests without any key are not counted:
they cost nothing and are refused anyway.

The address is the TCP peer's (``request.client``); X-Forwarded-For is only believed when
the operator names trusted proxies (uvicorn's ``forwarded_allow_ips``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import RateLimited


@dataclass
class _Window:
    started: float
    failures: int


class AuthThrottle:
    """Per-address failure counts (fixed windows) and a cache of recently valid key digests;
    both are LRU-bounded, so a flood from many addresses costs at most ``max_addresses``
    small entries."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        max_known_keys: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.max_known_keys = max_known_keys
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._known: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None, key: str | None) -> None:
        """Raise RateLimited when ``address`` is being slowed and ``key`` is not one that
        authenticated recently. Memory only: safe to call on the event loop."""
        retry = self.retry_after(address)
        if retry is not None and not (key and self._recently_valid(key)):
            raise RateLimited(
                f"too many failed authentications from this address; retry in {retry} s",
                retry_after=retry,
            )

    def retry_after(self, address: str | None) -> int | None:
        """Whole seconds until ``address`` may try again, or None when it is not slowed."""
        if address is None or not self._windows:
            return None
        now = self._clock()
        with self._lock:
            entry = self._windows.get(_bucket(address))
            if entry is None or entry.failures < self.limit:
                return None
            left = entry.started + self.window - now
        return max(1, math.ceil(left)) if left > 0 else None

    def record_failure(self, address: str | None) -> None:
        """A presented key was refused."""
        if address is None:
            return
        bucket, now = _bucket(address), self._clock()
        with self._lock:
            entry = self._windows.pop(bucket, None)
            if entry is None or now - entry.started >= self.window:
                entry = _Window(started=now, failures=0)
            entry.failures += 1
            self._windows[bucket] = entry  # most recent last
            while len(self._windows) > self.max_addresses:
                self._windows.popitem(last=False)

    def record_success(self, key: str) -> None:
        """``key`` authenticated: let it through a slowed address for a while."""
        digest, now = _digest(key), self._clock()
        with self._lock:
            self._known.pop(digest, None)
            self._known[digest] = now
            while len(self._known) > self.max_known_keys:
                self._known.popitem(last=False)

    def forget(self, key: str) -> None:
        """``key`` was refused after all (revoked, expired): no more bypass for it."""
        with self._lock:
            self._known.pop(_digest(key), None)

    def _recently_valid(self, key: str) -> bool:
        with self._lock:
            seen = self._known.get(_digest(key))
        return seen is not None and self._clock() - seen < 10 * self.window


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode(errors="replace")).hexdigest()


def _bucket(address: str) -> str:
    """IPv6 clients usually hold a whole /64: count it as one address."""
    if ":" not in address:  # IPv4 (or a name): as it is, without parsing on every request
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)
