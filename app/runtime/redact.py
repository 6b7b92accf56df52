"""Keep environment values (often secrets) out of messages that reach users and logs."""

from __future__ import annotations

MASK = "***"
# Shorter values ("1", "true", "prod") are rarely secret and would mask ordinary words.
MIN_SECRET_LEN = 4


def redact(text: str, env: dict[str, str]) -> str:
    """``text`` with every environment value of at least 4 characters masked."""
    for value in sorted(env.values(), key=len, reverse=True):
        if len(value) >= MIN_SECRET_LEN:
            text = text.replace(value, MASK)
    return text
