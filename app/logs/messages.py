"""What travels on the bus, and its wire form for buses that cross processes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.types import LogLine, LogStream


@dataclass(frozen=True, slots=True)
class Lines:
    """New log lines, in seq order."""

    lines: tuple[LogLine, ...]


@dataclass(frozen=True, slots=True)
class End:
    """The log is closed: ``last_seq`` is the final line's seq."""

    last_seq: int


@dataclass(frozen=True, slots=True)
class Changed:
    """The row behind the topic changed (status, fields); reload it."""

    status: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Ask the process running a deployment to stop it."""

    reason: str = "cancelled"


Message = Lines | End | Changed | Cancel


def coalesce(messages: Sequence[Message]) -> list[Message]:
    """Consecutive Lines become one, so every subscriber gets the same, fewer, chunks."""
    out: list[Message] = []
    run: list[LogLine] = []
    for message in messages:
        if isinstance(message, Lines):
            run.extend(message.lines)
            continue
        if run:
            out.append(Lines(tuple(run)))
            run = []
        out.append(message)
    if run:
        out.append(Lines(tuple(run)))
    return out


def line_to_json(line: LogLine) -> dict[str, Any]:
    return {
        "seq": line.seq,
        "ts": line.timestamp.isoformat(),
        "stream": line.stream.value,
        "step": line.step,
        "message": line.message,
    }


def line_from_json(data: dict[str, Any]) -> LogLine:
    return LogLine(
        seq=int(data["seq"]),
        timestamp=datetime.fromisoformat(data["ts"]),
        stream=LogStream(data["stream"]),
        step=data.get("step"),
        message=str(data["message"]),
    )


def encode(message: Message) -> str:
    if isinstance(message, Lines):
        body: dict[str, Any] = {"t": "lines", "lines": [line_to_json(x) for x in message.lines]}
    elif isinstance(message, End):
        body = {"t": "end", "last": message.last_seq}
    elif isinstance(message, Changed):
        body = {"t": "changed", "status": message.status}
    else:
        body = {"t": "cancel", "reason": message.reason}
    return json.dumps(body, separators=(",", ":"))


def decode(raw: str | bytes) -> Message:
    body = json.loads(raw)
    kind = body["t"]
    if kind == "lines":
        return Lines(tuple(line_from_json(x) for x in body["lines"]))
    if kind == "end":
        return End(int(body["last"]))
    if kind == "changed":
        return Changed(body.get("status"))
    return Cancel(str(body.get("reason", "cancelled")))
