"""The failed-authentication throttle: counts per address, windows, bypass for good keys,
bounded memory."""

from __future__ import annotations

import pytest

from app.auth.throttle import AuthThrottle
from app.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _throttle(clock: Clock, **kw: int) -> AuthThrottle:
    return AuthThrottle(limit=3, window=60.0, clock=clock, **kw)


def test_slowed_after_limit_failures_until_the_window_ends(clock: Clock) -> None:
    t = _throttle(clock)
    for _ in range(2):
        t.record_failure("10.0.0.1")
    t.check("10.0.0.1", "slw_guess")  # two failures: still allowed
    t.record_failure("10.0.0.1")
    with pytest.raises(RateLimited) as err:
        t.check("10.0.0.1", "slw_guess")
    assert err.value.retry_after == 60 and err.value.code == "RATE_LIMITED"
    clock.now += 45.5
    assert t.retry_after("10.0.0.1") == 15
    clock.now += 15
    t.check("10.0.0.1", "slw_guess")  # the window is over
    t.record_failure("10.0.0.1")  # a new window starts with one failure
    t.check("10.0.0.1", "slw_guess")


def test_other_addresses_and_missing_addresses_are_unaffected(clock: Clock) -> None:
    t = _throttle(clock)
    for _ in range(5):
        t.record_failure("10.0.0.1")
        t.record_failure(None)
    t.check("10.0.0.2", "slw_guess")
    t.check(None, "slw_guess")
    with pytest.raises(RateLimited):
        t.check("10.0.0.1", None)


def test_a_recently_valid_key_still_passes_a_slowed_address(clock: Clock) -> None:
    t = _throttle(clock)
    t.record_success("slw_good")
    for _ in range(3):
        t.record_failure("10.0.0.1")
    t.check("10.0.0.1", "slw_good")
    with pytest.raises(RateLimited):
        t.check("10.0.0.1", "slw_other")
    t.forget("slw_good")  # e.g. revoked since
    with pytest.raises(RateLimited):
        t.check("10.0.0.1", "slw_good")


def test_a_known_key_is_forgotten_after_a_while(clock: Clock) -> None:
    t = _throttle(clock)
    t.record_success("slw_good")
    clock.now += 601  # ten windows
    for _ in range(3):
        t.record_failure("10.0.0.1")
    with pytest.raises(RateLimited):
        t.check("10.0.0.1", "slw_good")


def test_ipv6_addresses_count_per_64(clock: Clock) -> None:
    t = _throttle(clock)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::ffff:3"):
        t.record_failure(host)
    with pytest.raises(RateLimited):
        t.check("2001:db8::9", None)
    t.check("2001:db8:0:1::1", None)  # another /64
    for _ in range(3):
        t.record_failure("::ffff:10.0.0.7")
    with pytest.raises(RateLimited):
        t.check("10.0.0.7", None)  # an IPv4-mapped address is its IPv4 address


def test_memory_is_bounded(clock: Clock) -> None:
    t = _throttle(clock, max_addresses=100, max_known_keys=10)
    for i in range(10_000):
        t.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        t.record_success(f"slw_{i}")
    assert len(t._windows) == 100 and len(t._known) == 10
    for _ in range(3):
        t.record_failure("192.0.2.1")
    with pytest.raises(RateLimited):  # the newest addresses are the ones kept
        t.check("192.0.2.1", None)
