"""Keeping secrets out of every text a user or a log can see: one masker for all of it."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"
# Env values shorter than this ("1", "on") are rarely secret and would mask ordinary text.
MIN_ENV_SECRET = 3


class Masker:
    """Replaces each secret with ``MASK``; longer secrets first, so overlaps mask whole."""

    def __init__(self, secrets: Iterable[str | None], *, min_length: int = 1) -> None:
        values = sorted({s for s in secrets if s and len(s) >= min_length}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def __bool__(self) -> bool:
        return self._pattern is not None


def env_masker(env: dict[str, str]) -> Masker:
    return Masker(env.values(), min_length=MIN_ENV_SECRET)
