"""Lengths and characters the API accepts in free text, checked before anything is stored.

Every string an input carries has a bound here, so a megabyte of title is refused with
``BAD_USER_INPUT`` naming the field and its limit (and never reaches a ``VARCHAR`` that
PostgreSQL would refuse with an internal error). Names shown to people also refuse control
characters and the Unicode bidirectional controls that make text display in another order
than it is stored (U+202A-U+202E, U+2066-U+2069, and the marks U+200E/U+200F/U+061C).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.errors import BadInput

NAME_MAX = 100
TITLE_MAX = 500  # deployments.title is VARCHAR(500)
DESCRIPTION_MAX = 10_000
ARG_MAX = 4096  # one command or health check argument
ARGS_MAX = 100  # arguments in a command or health check
ENV_VALUE_MAX = 32_768
ENV_KEY_MAX = 255
ENV_ENTRIES_MAX = 500

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def check_length(value: str, field: str, limit: int) -> str:
    """``value`` if it has at most ``limit`` characters; else BadInput naming both."""
    if len(value) > limit:
        raise BadInput(f"{field} must be at most {limit} characters, got {len(value)}")
    return value


def check_items(values: Sequence[object], field: str, limit: int) -> None:
    """At most ``limit`` entries in the list ``field``."""
    if len(values) > limit:
        raise BadInput(f"{field} takes at most {limit} entries, got {len(values)}")


def check_display_name(value: str, field: str = "name", limit: int = NAME_MAX) -> str:
    """A name shown to people: trimmed, 1 to ``limit`` characters, no control characters
    and no bidirectional overrides (which could make one name pass for another)."""
    value = value.strip()
    if not value:
        raise BadInput(f"{field} must not be empty")
    check_length(value, field, limit)
    if _CONTROL.search(value):
        raise BadInput(f"{field} must not contain control characters")
    if _BIDI.search(value):
        raise BadInput(
            f"{field} must not contain Unicode bidirectional control characters "
            "(U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)"
        )
    return value


def check_title(value: str | None, field: str = "title") -> str | None:
    """A deployment title: one line, at most TITLE_MAX characters."""
    if value is None:
        return None
    return check_display_name(value, field, TITLE_MAX)


def check_description(value: str | None, field: str = "description") -> str | None:
    """Free text over several lines: at most DESCRIPTION_MAX characters, no NUL or bidi
    overrides (newlines and tabs are fine)."""
    if value is None:
        return None
    check_length(value, field, DESCRIPTION_MAX)
    if "\x00" in value or _BIDI.search(value):
        raise BadInput(f"{field} must not contain NUL or Unicode bidirectional control characters")
    return value


def check_args(values: Sequence[str], field: str) -> list[str]:
    """A command line as a list: at most ARGS_MAX arguments of ARG_MAX characters, no NUL
    (the engine cannot pass one to exec)."""
    check_items(values, field, ARGS_MAX)
    for index, arg in enumerate(values):
        check_length(arg, f"{field}[{index}]", ARG_MAX)
        if "\x00" in arg:
            raise BadInput(f"{field}[{index}] must not contain NUL")
    return list(values)
