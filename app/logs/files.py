"""The log file format: one JSON array per line, ``[seq, timestamp, stream, step, message]``."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from app.types import LogLine, LogStream

TAIL_CHUNK = 64 * 1024


def parse(raw: str) -> LogLine | None:
    """One file line -> LogLine; None for a torn last line left by a crash."""
    try:
        seq, ts, stream, step, message = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return LogLine(int(seq), datetime.fromisoformat(ts), LogStream(stream), step, message)


def read_after(path: Path, after_seq: int, limit: int | None = None) -> list[LogLine]:
    """Lines with seq > ``after_seq`` in order, at most ``limit``."""
    out: list[LogLine] = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if after_seq and _quick_seq(raw) <= after_seq:
                continue
            line = parse(raw)
            if line is None or line.seq <= after_seq:
                continue
            out.append(line)
            if limit is not None and len(out) >= limit:
                break
    return out


def read_from(path: Path, *, offset: int, after_seq: int, limit: int) -> tuple[list[LogLine], int]:
    """Up to ``limit`` lines with seq > ``after_seq``, reading from byte ``offset``.

    Returns them and the offset to continue from. Only complete lines are consumed, so a
    line being appended right now is read whole next time.
    """
    out: list[LogLine] = []
    if not path.exists():
        return out, offset
    with path.open("rb") as fh:
        fh.seek(offset)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            offset += len(raw)
            text = raw.decode("utf-8", errors="replace")
            if _quick_seq(text) <= after_seq:
                continue
            line = parse(text)
            if line is not None and line.seq > after_seq:
                out.append(line)
                if len(out) >= limit:
                    break
    return out, offset


def _quick_seq(raw: str) -> int:
    """The seq of a raw line without decoding the rest of it."""
    end = raw.find(",")
    try:
        return int(raw[1:end])
    except ValueError:
        return 0


def last_seq(path: Path) -> int:
    """The seq of the last complete line, reading only the file's tail."""
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - TAIL_CHUNK))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    for raw in reversed(tail):
        line = parse(raw)
        if line is not None:
            return line.seq
    return 0
