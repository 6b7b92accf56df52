"""The shape of a WebSocket message, checked before Strawberry's handlers index into it.

Strawberry trusts the JSON it decodes: a list, an operation without an ``id`` or a ``query``
that is a number raise TypeError/KeyError inside the handler (a traceback in the log and
the socket dropped without a close frame). Both protocols' client messages are checked here.
"""

from __future__ import annotations

from typing import Any

_STR_OR_NONE = (str, type(None))
_DICT_OR_NONE = (dict, type(None))
_OPERATION = {"subscribe", "start"}  # graphql-transport-ws, legacy graphql-ws
_BY_ID = {"complete", "stop"}


def malformed(message: Any) -> str | None:
    """Why ``message`` is not a well-formed client message, or None when it is."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "Failed to parse message: an object with a string type is expected"
    kind = message["type"]
    if kind in _OPERATION | _BY_ID and not (isinstance(message.get("id"), str) and message["id"]):
        return f"Failed to parse message: {kind} needs a string id"
    if kind in _OPERATION:
        return _bad_payload(message.get("payload"))
    return None


def _bad_payload(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "Failed to parse message: the payload needs a string query"
    if not isinstance(payload.get("operationName"), _STR_OR_NONE):
        return "Failed to parse message: operationName must be a string"
    for name in ("variables", "extensions"):
        if not isinstance(payload.get(name), _DICT_OR_NONE):
            return f"Failed to parse message: {name} must be an object"
    return None
