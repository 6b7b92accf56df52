"""Resumable SSE events, Last-Event-ID parsing, stream counting and the key re-check."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import pytest

from app.errors import BadInput
from app.graphql.streams import Positioned, ResumableSSETransport, Stream, last_event_id, rechecked
from app.graphql.ws_limits import Limits, SocketRegistry, TooMany

LIMITS = Limits(
    connections=10,
    connections_per_key=10,
    pending_per_address=10,
    subscriptions=10,
    subscriptions_per_key=2,
)


def test_an_event_with_a_position_carries_it_as_its_id() -> None:
    sse = ResumableSSETransport()
    positioned = Positioned({"data": {"x": 1}}, 42)
    assert sse.encode_next(positioned, json.dumps) == (
        'id: 42\r\nevent: next\r\ndata: {"data": {"x": 1}}\r\n\r\n'
    )
    assert sse.encode_next({"data": None}, json.dumps).startswith("event: next\r\n")


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("", 0), (" 17 ", 17), ("0", 0)])
def test_last_event_id(value: str | None, expected: int) -> None:
    assert last_event_id({} if value is None else {"last-event-id": value}) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "١٢", str(2**63)])
def test_a_last_event_id_that_is_not_a_position_is_bad_input(value: str) -> None:
    with pytest.raises(BadInput, match="Last-Event-ID"):
        last_event_id({"last-event-id": value})


def test_streams_count_as_operations_of_their_key() -> None:
    registry = SocketRegistry()
    streams = [Stream(registry, LIMITS) for _ in range(3)]
    streams[0].open("k")
    streams[1].open("k")
    with pytest.raises(TooMany):
        streams[2].open("k")
    assert (registry.connections(), registry.operations("k")) == (2, 2), "the refused one left"
    streams[0].close()
    streams[2].open("k")
    assert registry.operations("k") == 2


async def test_a_revoked_key_ends_the_stream_with_an_error() -> None:
    now = [0.0]
    valid = [True]

    async def chunks() -> AsyncGenerator[str, None]:
        for n in range(10):
            now[0] += 1.0
            if n == 4:
                valid[0] = False
            yield f"chunk{n}"

    async def still_valid() -> bool:
        return valid[0]

    sse = ResumableSSETransport()
    guarded = rechecked(
        chunks, still_valid=still_valid, interval=2.0, transport=sse,
        encode_json=json.dumps, clock=lambda: now[0],
    )  # fmt: skip
    got = [chunk async for chunk in guarded()]
    assert got[:4] == ["chunk0", "chunk1", "chunk2", "chunk3"]
    assert "UNAUTHENTICATED" in got[-2] and got[-1].startswith("event: complete")
    assert got[4] == "chunk4" and len(got) == 7  # checked again at chunk5 (2 s later): ended
