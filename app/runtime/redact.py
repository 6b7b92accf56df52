"""Keep environment values (often secrets) out of messages that reach users and logs."""

from __future__ import annotations

from app.masking import env_masker


def redact(text: str, env: dict[str, str]) -> str:
    """``text`` with the service's environment values masked."""
    return env_masker(env)(text)
