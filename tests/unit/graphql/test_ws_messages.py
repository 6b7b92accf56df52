"""malformed(): the client messages Strawberry's WebSocket handlers would trip over."""

from __future__ import annotations

from typing import Any

import pytest

from app.graphql.ws_messages import malformed

QUERY = {"query": "subscription { x }"}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "connection_init"},
        {"type": "connection_init", "payload": {"apiKey": "k"}},
        {"type": "ping"},
        {"type": "subscribe", "id": "1", "payload": QUERY},
        {"type": "start", "id": "1", "payload": {**QUERY, "variables": {"a": 1}}},
        {"type": "start", "id": "1", "payload": {**QUERY, "variables": None}},
        {"type": "subscribe", "id": "1", "payload": {**QUERY, "operationName": "Op"}},
        {"type": "complete", "id": "1"},
        {"type": "stop", "id": "1"},
        {"type": "something_else"},  # each protocol answers unknown types its own way
    ],
)
def test_well_formed_messages_pass(message: dict[str, Any]) -> None:
    assert malformed(message) is None


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ([1, 2], "an object with a string type"),
        ("text", "an object with a string type"),
        ({"payload": {}}, "an object with a string type"),
        ({"type": 3}, "an object with a string type"),
        ({"type": "subscribe", "payload": QUERY}, "subscribe needs a string id"),
        ({"type": "start", "id": 1, "payload": QUERY}, "start needs a string id"),
        ({"type": "stop", "id": ""}, "stop needs a string id"),
        ({"type": "complete"}, "complete needs a string id"),
        ({"type": "subscribe", "id": "1"}, "a string query"),
        ({"type": "start", "id": "1", "payload": []}, "a string query"),
        ({"type": "start", "id": "1", "payload": {"query": 1}}, "a string query"),
        ({"type": "start", "id": "1", "payload": {**QUERY, "variables": []}}, "variables"),
        ({"type": "subscribe", "id": "1", "payload": {**QUERY, "extensions": 1}}, "extensions"),
        (
            {"type": "subscribe", "id": "1", "payload": {**QUERY, "operationName": 1}},
            "operationName",
        ),
    ],
)
def test_malformed_messages_say_what_is_wrong(message: Any, says: str) -> None:
    reason = malformed(message)
    assert reason is not None and says in reason and len(reason.encode()) <= 123  # close reason
