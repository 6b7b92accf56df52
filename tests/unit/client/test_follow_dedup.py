"""LogFollower hands each seq on once, whatever the batches overlap."""

from __future__ import annotations

from typing import Any

from app.client.connection import Connection
from app.client.follow import LogFollower


def _batch(*seqs: int) -> dict[str, Any]:
    return {"data": {"deploymentLogs": [{"seq": s, "message": f"l{s}"} for s in seqs]}}


def test_overlapping_batches_are_handed_on_once() -> None:
    got: list[int] = []
    follower = LogFollower(
        Connection.of("http://h:1", "k"),
        "d",
        after_seq=2,
        on_lines=lambda lines: got.extend(line["seq"] for line in lines),
    )
    for payload in (_batch(1, 2, 3), _batch(4, 5), _batch(), _batch(4, 5, 6), _batch(7)):
        follower._take(payload)
    assert got == [3, 4, 5, 6, 7] and follower.last_seq == 7
