"""JSON from the network, decoded strictly, so that what cannot be used is refused at once.

``json.loads`` accepts three things that fail later, as server errors with a traceback:
bytes in another encoding than UTF-8 (it guesses), nesting deeper than the interpreter's
recursion limit (RecursionError), and strings with unpaired surrogates (``"\\ud800"``),
which no database or UTF-8 encoder takes.
"""

from __future__ import annotations

import json
import re

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONRefused(ValueError):
    """The text is not JSON this server can use; the message says why."""


def loads(data: str | bytes) -> object:
    """The JSON value of ``data`` (UTF-8), or JSONRefused."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(f"not valid UTF-8 (byte {exc.start} is not)") from exc
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise JSONRefused(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise JSONRefused("JSON nested too deeply") from exc
    if _SURROGATE_ESCAPE.search(data) and has_unpaired_surrogate(value):
        raise JSONRefused("JSON with a string that has an unpaired surrogate")
    return value


def has_unpaired_surrogate(value: object) -> bool:
    """Whether a string in ``value`` (JSON-like: dicts, lists, scalars) cannot be encoded;
    iterative, so any depth the decoder accepted is fine."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not _encodable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
