"""Identifiers: time-ordered, lowercase hex, valid as Docker tags and in URLs."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    """48 bits of milliseconds then 48 random bits: sorts by creation, 24 characters."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"
